from . import test_pos_purchases
from . import test_pos_demo
