"""What the PyTorch and the MindSpore backends build, stated once in pure Python.

Each module here turns a constructor's arguments into a plan: it validates them (with the error
messages both backends raise) and derives every size the layers need (channel counts, stage plans,
which slots take attention and on how many channels), and builds the layers in construction order
through a small namespace of layer constructors each backend provides (:class:`.plan.LayerOps`:
``miamind.models._ops``, ``miamind.mindspore.models._layers``). The backends' classes then only attach
those layers and define their forward pass, so the two can never drift apart.

- :mod:`.mia`: MIA-Mind's variants, the layers' keyword arguments (``MIASpec``), checks and hidden width.
- :mod:`.plan`: what every model plan shares: ``ModelSpec``, one attention slot (``AttentionSite``),
  ``LayerOps``, ``takes_spec``.
- :mod:`.resnet`, :mod:`.fastnet`, :mod:`.unet`, :mod:`.flowcnn`: the models' plans.

Importing this package imports neither torch nor MindSpore.
"""
