import torch

# float64 is the default for the theory checks (DESIGN.md); set once for every test worker.
torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)
