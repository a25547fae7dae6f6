from . import test_personal_coupons
from . import test_tour
