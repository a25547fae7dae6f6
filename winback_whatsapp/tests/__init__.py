from . import test_install
from . import test_segment
from . import test_send
from . import test_report
from . import test_access
from . import test_tour
from . import test_i18n
from . import test_webhook
