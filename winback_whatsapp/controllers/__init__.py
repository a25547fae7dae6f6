from . import main
from . import link_tracker
