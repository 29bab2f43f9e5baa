"""jaxpapers: research systems on one JAX/Flax stack."""
__version__ = '0.1.0'
