"""The formulas the rest of gandyn shares, one subject a module, each written once: the GAN losses and
their derivatives (``losses``), kernels and MMD (``kernels``), the Gaussian W₂ (``wasserstein``), Lyapunov
equations (``lyapunov``) and the fluctuation–dissipation terms (``fdr``). Nothing here imports the rest
of gandyn."""
