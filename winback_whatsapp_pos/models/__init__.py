from . import res_company
from . import res_config_settings
from . import winback_segment_recompute
from . import winback_enrollment
from . import pos_order
from . import account_move
