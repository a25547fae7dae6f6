from . import test_install
from . import test_segment
from . import test_send
