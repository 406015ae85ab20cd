"""Write another team's catalog: N commitments on made-up projects in made-up places.

    python tests/bench/catalog.py --commitments 1000 [--seed 1] > other.toml

For the refresh benchmark's "scale in commitments" (tests/bench/run.py): the catalog is loaded with
`tracker catalog load` next to the built-in one, and refresh, status and the weekly report are
timed against the database without it. Each commitment looks like a modest real one: an agreement
of 20 commitments between two made-up provinces; a project (one of 40 kinds: a bridge, a power
line, a hospital …, named in the four languages, Azerbaijani and Russian words taking endings) in
one or two made-up places (the Azerbaijani and Russian names taking endings, as `Bakı*` does);
two rules (place and project; the project's own name, weaker), places and a competing place,
queries in four languages and GDELT, three milestones with milestone words, a deadline. About 1 %
of the benchmark feeds' items share a word with these rules (the project words are ordinary news
words), so the matcher does real candidate work, but the made-up places keep them from matching.
"""

from __future__ import annotations

import argparse
import random
import sys

# (en, az, ru, fa) for kinds of projects; "*" where the language inflects the word.
PROJECTS = [
    ("bridge", "körpü*", "мост*", "پل"),
    ("power line", "elektrik xətti*", "лэп", "خط انتقال برق"),
    ("power plant", "elektrik stansiya*", "электростанци*", "نیروگاه"),
    ("hospital", "xəstəxana*", "больниц*", "بیمارستان"),
    ("school", "məktəb*", "школ*", "مدرسه"),
    ("railway", "dəmir yolu*", "железн* дорог*", "راه آهن"),
    ("highway", "avtomobil yolu*", "автодорог*", "بزرگراه"),
    ("gas pipeline", "qaz kəməri*", "газопровод*", "خط لوله گاز"),
    ("water pipeline", "su kəməri*", "водопровод*", "خط لوله آب"),
    ("dam", "su anbarı*", "плотин*", "سد"),
    ("airport", "hava liman*", "аэропорт*", "فرودگاه"),
    ("sea port", "dəniz liman*", "морск* порт*", "بندر"),
    ("customs post", "gömrük post*", "таможенн* пункт*", "گمرک"),
    ("free economic zone", "azad iqtisadi zona*", "свободн* экономическ* зон*", "منطقه آزاد"),
    ("logistics centre", "logistika mərkəz*", "логистическ* центр*", "مرکز لجستیک"),
    ("grain terminal", "taxıl terminal*", "зернов* терминал*", "پایانه غلات"),
    ("cement plant", "sement zavod*", "цементн* завод*", "کارخانه سیمان"),
    ("textile factory", "toxuculuq fabrik*", "текстильн* фабрик*", "کارخانه نساجی"),
    ("car assembly plant", "avtomobil zavod*", "автосборочн* завод*", "کارخانه خودروسازی"),
    ("solar farm", "günəş elektrik*", "солнечн* электростанци*", "نیروگاه خورشیدی"),
    ("wind farm", "külək elektrik*", "ветров* электростанци*", "نیروگاه بادی"),
    ("irrigation canal", "suvarma kanal*", "оросительн* канал*", "کانال آبیاری"),
    ("university campus", "universitet şəhərciy*", "университетск* кампус*", "پردیس دانشگاه"),
    ("sports complex", "idman kompleks*", "спортивн* комплекс*", "مجموعه ورزشی"),
    ("housing estate", "yaşayış kompleks*", "жил* комплекс*", "شهرک مسکونی"),
    ("tunnel", "tunel*", "тоннел*", "تونل"),
    ("ring road", "dairəvi yol*", "кольцев* дорог*", "کمربندی"),
    ("bus terminal", "avtovağzal*", "автовокзал*", "پایانه اتوبوس"),
    ("cold storage", "soyuducu anbar*", "холодильн* склад*", "سردخانه"),
    ("fish farm", "balıq təsərrüfat*", "рыбн* хозяйств*", "مزرعه پرورش ماهی"),
    ("greenhouse complex", "istixana kompleks*", "тепличн* комплекс*", "مجتمع گلخانه ای"),
    ("trade centre", "ticarət mərkəz*", "торгов* центр*", "مرکز تجاری"),
    ("exhibition centre", "sərgi mərkəz*", "выставочн* центр*", "مرکز نمایشگاهی"),
    ("fibre-optic line", "fiber-optik xətt*", "оптоволоконн* лини*", "فیبر نوری"),
    ("border market", "sərhəd bazar*", "пограничн* рынок*", "بازارچه مرزی"),
    ("veterinary lab", "baytarlıq laboratoriya*", "ветеринарн* лаборатори*", "آزمایشگاه دامپزشکی"),
    ("museum", "muzey*", "музе*", "موزه"),
    ("theatre", "teatr*", "театр*", "تئاتر"),
    ("rail freight yard", "yük stansiya*", "грузов* станци*", "ایستگاه بار"),
    ("oil depot", "neft bazası*", "нефтебаз*", "انبار نفت"),
]
# Made-up place names: Latin (en, az), Cyrillic and Persian spellings from one syllable list.
_SYLLABLES = [
    ("kar", "кар", "کار"), ("vel", "вел", "ول"), ("zan", "зан", "زان"), ("dor", "дор", "دور"),
    ("mil", "мил", "میل"), ("sar", "сар", "سار"), ("bek", "бек", "بک"), ("tul", "тул", "تول"),
    ("gan", "ган", "گان"), ("rez", "рез", "رز"), ("pol", "пол", "پل"), ("hur", "хур", "هور"),
    ("nav", "нав", "ناو"), ("shin", "шин", "شین"), ("lor", "лор", "لر"), ("mas", "мас", "ماس"),
]  # fmt: skip


def place(rng: random.Random, used: set[str]) -> tuple[str, str, str]:
    while True:
        parts = [rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3)))]
        latin = "".join(p[0] for p in parts).capitalize()
        if latin not in used:
            used.add(latin)
            cyrillic = "".join(p[1] for p in parts).capitalize()
            return latin, cyrillic, "".join(p[2] for p in parts)


def _list(values: list[str]) -> str:
    return "[" + ", ".join('"' + v + '"' for v in values) + "]"


def commitment(n: int, agreement: int, rng: random.Random, used: set[str]) -> list[str]:
    en, az, ru, fa = rng.choice(PROJECTS)
    towns = [place(rng, used) for _ in range(rng.choice((1, 2)))]
    rival = place(rng, used)
    slug = f"other-{agreement:03d}-{n:04d}"
    year = 2022 + n % 4
    lines = [
        "[[agreement.commitment]]",
        f'slug = "{slug}"',
        f'title = "{en.capitalize()} in {towns[0][0]}"',
        f"announced_on = {year}-0{1 + n % 9}-1{n % 9}",
        f"deadline = {year + 3}-12-31",
        'milestones = ["Contract signed", "Construction started", "Opened"]',
        f"queries.en = '\"{towns[0][0]}\" {en.rstrip('*')}'",
        f"queries.az = '\"{towns[0][0]}\" {az.rstrip('*')}'",
        f"queries.ru = '\"{towns[0][1]}\" {ru.rstrip('*')}'",
        f"queries.fa = '\"{towns[0][2]}\" {fa}'",
        f"queries.gdelt = '\"{towns[0][0]}\" {en}'",
        "places = " + _list([t[0] for t in towns] + [t[1] + "*" for t in towns]),
        "not_places = " + _list([rival[0], rival[1] + "*", rival[2]]),
        'milestone_terms.2.en = ["construction started", "foundation stone"]',
        'milestone_terms.3.en = ["opened", "inaugurated"]',
        'milestone_terms.3.ru = ["открыт*"]',
        "",
        "[[agreement.commitment.rule]]",
        'name = "place and project"',
        "[[agreement.commitment.rule.group]]",
        "en = " + _list([t[0] for t in towns]),
        "az = " + _list([t[0] + "*" for t in towns]),
        "ru = " + _list([t[1] + "*" for t in towns]),
        "fa = " + _list([t[2] for t in towns]),
        "[[agreement.commitment.rule.group]]",
        f'en = ["{en}"]',
        f'az = ["{az}"]',
        f'ru = ["{ru}"]',
        f'fa = ["{fa}"]',
        "",
        "[[agreement.commitment.rule]]",
        'name = "the project by name"',
        "strength = 0.6",
        "[[agreement.commitment.rule.group]]",
        f'en = ["{towns[0][0]} {en}"]',
        f'ru = ["{ru.split()[0]} {towns[0][1]}*"]',
        "",
    ]
    return lines


def catalog(commitments: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    used: set[str] = set()
    out = ["format = 1", ""]
    per = 20
    for a in range(-(-commitments // per)):
        out += [
            "[[agreement]]",
            f'slug = "other-agreement-{a:03d}"',
            f'title = "Cooperation programme {a + 1} between two provinces"',
            'language = "en"',
            "",
        ]
        for n in range(a * per, min(commitments, (a + 1) * per)):
            out += commitment(n, a, rng, used)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commitments", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sys.stdout.write(catalog(args.commitments, args.seed))


if __name__ == "__main__":
    main()
