from . import loyalty_card
from . import loyalty_history
from . import winback_campaign
from . import winback_enrollment
from . import winback_step
from . import winback_template
from . import winback_cost
from . import winback_report
