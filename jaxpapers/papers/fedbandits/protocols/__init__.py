"""Communication protocols, registered by name (`get('inc_feducb')`)."""
from jaxpapers.papers.fedbandits.protocols import base
from jaxpapers.papers.fedbandits.protocols import baselines  # noqa: F401  registers
from jaxpapers.papers.fedbandits.protocols import inc_feducb  # noqa: F401  registers
from jaxpapers.papers.fedbandits.protocols import truth_fedban  # noqa: F401  registers

get = base.PROTOCOLS.get
names = base.PROTOCOLS.names
