"""Data-parallel training on ``torch.distributed``: the rank context (``context``) and the launcher
that runs torchrun's elastic agent inside the CLI (``launch``). A single process is a world of
size 1 and never imports this package's torch side."""
