"""The formulas the rest of gandyn shares, one subject a module, each written once: the GAN losses, their
derivatives and WGAN-GP's penalty (``losses``), kernels and MMD (``kernels``), Gaussian fits and W₂
(``wasserstein``), Lyapunov equations (``lyapunov``) and the fluctuation–dissipation terms (``fdr``).
Nothing here imports the rest of gandyn beyond ``games.linalg``; the linearisation at x*, which reads the
update code, is ``games.linearisation``."""
