from . import test_personal_coupons
from . import test_demo
from . import test_tour
