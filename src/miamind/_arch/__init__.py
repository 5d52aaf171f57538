"""What the PyTorch and the MindSpore backends build, stated once in pure Python.

Each module here turns a constructor's arguments into a plan: it validates them (with the error
messages both backends raise) and derives every size the layers need (channel counts, stage plans,
which slots take attention and on how many channels). The backends' classes then only build their
framework's layers from that plan, so the two can never drift apart.

- :mod:`.mia`: MIA-Mind's variants, their constructor-argument checks and hidden width.
- :mod:`.slots`: one attention layer of a model (what to build, where, on how many channels).
- :mod:`.resnet`, :mod:`.fastnet`, :mod:`.unet`, :mod:`.flowcnn`: the models' plans.

Importing this package imports neither torch nor MindSpore.
"""
