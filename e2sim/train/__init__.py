"""Training side wing (torch, imported lazily): models, data, the training loop with SMD/SLU/PSG."""
