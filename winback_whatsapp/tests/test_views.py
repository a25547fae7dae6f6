from lxml import etree

from odoo.fields import Field
from odoo.tests import new_test_user, tagged
from odoo.tools.safe_eval import datetime, dateutil, safe_eval, time

from .common import WinbackReportCase

MODULE = "winback_whatsapp"
RELATIONAL = ("many2one", "one2many", "many2many")
SUBVIEWS = ("list", "form", "kanban")


def specification(node, model, models_info):
    """What the web client reads for ``node``'s fields: every ``<field>`` not
    nested in another field's subview, relational ones with the fields of
    their inline subview (else their display name)."""
    spec = {}
    fields_info = models_info[model]["fields"]
    for child in node.iterchildren(tag=etree.Element):
        if child.tag != "field":
            spec.update(specification(child, model, models_info))
            continue
        name = child.get("name")
        info = fields_info[name]
        if info["type"] not in RELATIONAL:
            spec[name] = {}
            continue
        sub = {}
        for view in child.iterchildren(*SUBVIEWS):
            sub.update(specification(view, info["relation"], models_info))
        spec[name] = {"fields": sub or {"display_name": {}}}
    return spec


@tagged("post_install", "-at_install")
class TestViews(WinbackReportCase):
    """Every screen of the addon's menus opens for a Win-back user."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s1, s2 = cls.step1, cls.step2
        cls._enroll(
            cls.segment_warm, "converted", revenue=80.0, messages=[(s1, "read")]
        )
        cls._enroll(
            cls.segment_warm, "replied", messages=[(s1, "read"), (s2, "delivered")]
        )
        cls._enroll(cls.segment_cold, "running", messages=[(s1, "sent")])
        cls._enroll(cls.segment_cold, "holdout", holdout=True)
        # An inbound message from an unknown number: the unmatched replies.
        cls.env["winback.message"].create(
            {
                "direction": "inbound",
                "account_id": cls.account.id,
                "company_id": cls.company.id,
                "phone_e164": "+393339999999",
                "body": "Who is this?",
                "state": "received",
            }
        )
        cls.env.flush_all()
        cls.user = new_test_user(
            cls.env,
            login="winback_views_user",
            groups=f"{MODULE}.group_winback_user",
        )

    def _eval(self, expr, env):
        if not isinstance(expr, str):
            return expr or {}
        return safe_eval(
            expr,
            {
                "uid": env.uid,
                "user": env.user,
                "context": dict(env.context),
                "allowed_company_ids": env.companies.ids,
                "current_company_id": env.company.id,
                "active_id": False,
                "active_ids": [],
                "active_model": False,
                "datetime": datetime,
                "context_today": datetime.datetime.now,
                "relativedelta": dateutil.relativedelta.relativedelta,
                "time": time,
            },
        )

    def _menu_actions(self):
        """The act_window actions of the addon's menus the user can see, as
        the web client loads them."""
        menu_ids = (
            self.env["ir.model.data"]
            .search([("module", "=", MODULE), ("model", "=", "ir.ui.menu")])
            .mapped("res_id")
        )
        visible = self.env["ir.ui.menu"].with_user(self.user)._visible_menu_ids()
        menus = self.env["ir.ui.menu"].browse(sorted(set(menu_ids) & visible))
        actions = []
        for menu in menus:
            if menu.action and menu.action._name == "ir.actions.act_window":
                actions.append((menu, menu.action.sudo()._get_action_dict()))
        return actions

    def _read_grouped(self, model, domain, view_type, arch, fields_info):
        """The read_group calls of a pivot (totals, each header, the cells)
        or a graph, with the view's measures and groupbys."""
        measures, groupbys = ["__count"], []
        for node in arch.iter("field"):
            name = node.get("name")
            if node.get("type") == "measure":
                info = fields_info[name]
                aggregator = info["aggregator"]
                if info["type"] == "many2one":
                    aggregator = "count_distinct"
                measures.append(f"{name}:{aggregator}")
            elif view_type == "pivot" and node.get("type") in ("row", "col"):
                groupbys.append(name)
            elif view_type == "graph" and not node.get("invisible"):
                groupbys.append(name)
        self.assertTrue(groupbys, f"{view_type} of {model._name} groups by nothing")
        count = model.search_count(domain)
        if view_type == "pivot":
            for groupby in ([], *([g] for g in groupbys), groupbys):
                groups = model.read_group(domain, measures, groupby, lazy=False)
                total = sum(group["__count"] for group in groups)
                self.assertEqual(total, count, f"pivot by {groupby}")
        else:
            groups = model.web_read_group(domain, measures, groupbys, lazy=False)
            total = sum(group["__count"] for group in groups["groups"])
            self.assertEqual(total, count, "graph")

    def _open(self, menu, action):
        env = self.env(user=self.user)
        context = {**env.context, **self._eval(action.get("context"), env)}
        env = env(context=context)
        domain = self._eval(action.get("domain"), env) or []
        model = env[action["res_model"]]
        view_types = action["view_mode"].split(",")
        search_view = action.get("search_view_id") or [False]
        views = [
            (view_id, view_type)
            for view_id, view_type in action["views"]
            if view_type in view_types
        ] + [(search_view[0], "search")]
        result = model.get_views(views, {"toolbar": True, "load_filters": True})
        models_info = result["models"]
        fields_info = models_info[model._name]["fields"]
        arches = {
            view_type: etree.fromstring(view["arch"])
            for view_type, view in result["views"].items()
        }
        record_id = None
        for view_type in view_types:
            arch = arches[view_type]
            if view_type in ("list", "kanban"):
                spec = specification(arch, model._name, models_info)
                read = model.web_search_read(domain, spec, limit=80)
                self.assertEqual(len(read["records"]), min(read["length"], 80))
                if read["records"]:
                    record_id = record_id or read["records"][0]["id"]
            elif view_type in ("pivot", "graph"):
                self._read_grouped(model, domain, view_type, arch, fields_info)
            elif view_type != "form":
                self.fail(f"{menu.complete_name}: no check for {view_type} views")
        if "form" in view_types:
            record_id = record_id or model.search(domain, limit=1).id
            self.assertTrue(record_id, f"no record to open in {menu.complete_name}")
            spec = specification(arches["form"], model._name, models_info)
            (values,) = model.browse(record_id).web_read(spec)
            self.assertEqual(values["id"], record_id)
        # The search view's default filters and groupings apply.
        for node in arches["search"].iter("filter"):
            if not context.get(f"search_default_{node.get('name')}"):
                continue
            if node.get("domain"):
                model.web_search_read(
                    domain + self._eval(node.get("domain"), env), {"id": {}}
                )
            groupby = self._eval(node.get("context") or "{}", env).get("group_by")
            if groupby:
                model.web_read_group(domain, ["__count"], [groupby])

    def test_every_menu_opens_in_every_view(self):
        """A Win-back user opens every menu of the addon in each of its view
        types (list, kanban, pivot, graph, form) without an error."""
        actions = self._menu_actions()
        opened = {action["res_model"] for menu, action in actions}
        # The menus a salesperson works from are all there.
        self.assertLessEqual(
            {"winback.campaign", "winback.enrollment", "winback.report"}, opened
        )
        # Every screen is tried, and every crash is listed, not just the first.
        crashes = []
        for menu, action in actions:
            try:
                with self.env.cr.savepoint():
                    self._open(menu, action)
            except Exception as error:  # any crash fails the test, listed below
                crashes.append(f"{menu.complete_name}: {type(error).__name__}: {error}")
        self.assertFalse(crashes, "\n".join(crashes))


@tagged("post_install", "-at_install")
class TestFieldNames(WinbackReportCase):
    def test_no_field_shadows_a_method(self):
        """No field of the addon hides a method or attribute of its model, be
        it from ``models.Model`` or a mixin (a field named ``read`` turns
        ``records.read()`` into a field access). The fields every model gets
        (id, display_name, create_date...) are set on each model class by
        Odoo, so they never clash."""
        clashes, checked = [], set()
        for model_name, model in self.env.registry.items():
            for name, field in model._fields.items():
                if MODULE not in (field._modules or ()):
                    continue
                checked.add(model_name)
                for cls in model.__mro__:
                    attr = cls.__dict__.get(name)
                    if attr is not None and not isinstance(attr, Field):
                        clashes.append(f"{model_name}.{name} ({cls.__module__})")
                        break
        self.assertLessEqual({"winback.report", "res.partner"}, checked)
        self.assertFalse(clashes, "fields named like a method of their model")
