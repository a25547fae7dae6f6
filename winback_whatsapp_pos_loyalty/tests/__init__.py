from . import test_pos_coupons
