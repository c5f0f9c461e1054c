"""One trainer per stage; resumable; runs alone or under torchrun (gloo/nccl)."""
