"""Training tasks: data modules (datamodules.py, sampling.py, synthetic.py, inputs.py), metrics, the task module."""
