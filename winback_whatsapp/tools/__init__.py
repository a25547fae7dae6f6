from . import cron
from . import send_window
