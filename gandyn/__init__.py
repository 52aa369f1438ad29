"""gandyn: discrete, stochastic and continuous dynamics of adversarial training."""
__version__ = "0.1.0"
