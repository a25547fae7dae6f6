"""Benchmark of the inbound-message lookup (res.partner._winback_find_by_number):
every WhatsApp reply and opt-out finds its customer by number among N
partners generated in SQL. Compared in the same run with the floor, one
indexed SQL query on the sanitized number, and with the equality domain on
the raw columns that a straightforward implementation would search."""

import random
import statistics

from benchlib import environment, generate_customers, parser, registry, report, timed


def lookups_ms(function, numbers):
    """Median and worst milliseconds per lookup, and how many found someone."""
    times, found = [], 0
    for number in numbers:
        seconds, result = timed(function, number)
        times.append(seconds * 1000)
        found += bool(result)
    return statistics.median(times), max(times), found


def main():
    args = parser(__doc__)
    args.add_argument("--partners", type=int, default=1_000_000)
    args.add_argument("--lookups", type=int, default=500)
    args.add_argument("--naive-lookups", type=int, default=10)
    options = args.parse_args()
    random.seed(7)
    reg = registry(options)
    with environment(reg) as env:
        generate_customers(
            env, options.partners, env.ref("winback_whatsapp.segment_cold")
        )
    with environment(reg) as env:
        env.cr.execute("ANALYZE res_partner")
    with environment(reg) as env:
        Partner = env["res.partner"]
        numbers = [
            "+393%09d" % random.randint(1, options.partners)
            for _ in range(options.lookups)
        ]
        # Warm the caches (registry, plans) on other numbers first.
        for number in numbers[:20]:
            Partner._winback_find_by_number(number[:-1] + "0")

        def floor(number):
            env.cr.execute(
                "SELECT id FROM res_partner WHERE phone_sanitized = %s", [number]
            )
            return env.cr.fetchall()

        def naive(number):
            return Partner.search(
                [
                    "|",
                    "|",
                    ("phone_sanitized", "=", number),
                    ("mobile", "=", number),
                    ("phone", "=", number),
                ]
            )

        addon_p50, addon_max, found = lookups_ms(
            Partner._winback_find_by_number, numbers
        )
        floor_p50, _max, _found = lookups_ms(floor, numbers)
        naive_p50, _max, _found = lookups_ms(naive, numbers[: options.naive_lookups])
        report(
            "match",
            partners=options.partners,
            lookups=options.lookups,
            found=found,
            addon_p50_ms=addon_p50,
            addon_max_ms=addon_max,
            floor_p50_ms=floor_p50,
            ratio=addon_p50 / floor_p50,
            naive_p50_ms=naive_p50,
        )


if __name__ == "__main__":
    main()
