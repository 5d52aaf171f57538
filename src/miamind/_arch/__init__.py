"""What the PyTorch and the MindSpore backends share, stated once in pure Python.

- :mod:`.mia`: MIA-Mind's variants, the layers' keyword arguments (``MIASpec``), their checks and the
  hidden width, so both backends refuse the same input with the same message.

The models are written natively in each backend (:mod:`miamind.models`, :mod:`miamind.mindspore.models`);
the parity tests keep the twins equal. Importing this package imports neither torch nor MindSpore.
"""
