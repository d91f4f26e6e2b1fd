from sgprepro.kernels import pin_cpu_kernels

pin_cpu_kernels()  # before torch's first operation anywhere in the harness (sgprepro/kernels.py)

__version__ = "0.1.0"
