"""A loopback server of N synthetic RSS feeds of M items each, for the refresh benchmarks.

    python tests/bench/feeds.py --feeds 200 --items 50 [--hosts 200] [--seed 1] [--no-gzip]

Prints one JSON line once every socket listens — the feeds (name, url, language, country) and a
stats URL — then serves until killed. Every feed is rendered once at start-up into bytes (plain
and gzip, as news sites send them); a request is a dictionary lookup and one `write`, on an
asyncio server, so the server is never the bottleneck of what it measures.

Feeds are spread over `--hosts` loopback addresses (127.0.0.2, 127.0.0.3, … — Linux routes all of
127.0.0.0/8 to the loopback interface), each address listening on its own port: with the default
of one host per feed, a refresh faces 200 different hosts, as it does in production, and its
per-host limit does not serialise anything that would run in parallel against real outlets.

Text is realistic in four languages (fa, az, en, ru): mostly unrelated news (rates, weather,
football, diplomacy — including near misses such as a Tabriz carpet fair or a Baku oil show), and
about one item in ten about a catalog commitment, in the phrasings outlets use ("Iran Air launches
Tabriz-Baku flights", "Aghband-Kalala bridge", "پرواز تبریز باکو"). Each feed has a fixed ETag and
Last-Modified; a conditional request that matches either gets 304 Not Modified.

`GET /__stats` on any host returns the request counts by status as JSON; `?reset=1` zeroes them.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from xml.sax.saxutils import escape

LANGUAGES = ("fa", "az", "en", "ru")
RELATED_SHARE = 0.1

# (outlet, domain, side) per language; feeds take them in turn, so 200 feeds reuse ~30 outlets
# under distinct URLs, as the same outlet publishes several section feeds.
OUTLETS: dict[str, list[tuple[str, str, str]]] = {
    "fa": [
        ("ایرنا", "irna.ir", "IR"),
        ("خبرگزاری مهر", "mehrnews.com", "IR"),
        ("خبرگزاری تسنیم", "tasnimnews.com", "IR"),
        ("ایسنا", "isna.ir", "IR"),
        ("خبرگزاری فارس", "farsnews.ir", "IR"),
        ("بامداد تبریز", "bamdadetabriz.ir", "IR"),
        ("آران نیوز", "arannews.com", "IR"),
        ("صدا و سیمای تبریز", "tabriz.irib.ir", "IR"),
    ],
    "az": [
        ("Report.az", "report.az", "AZ"),
        ("Trend", "az.trend.az", "AZ"),
        ("APA", "apa.az", "AZ"),
        ("AZƏRTAC", "azertag.az", "AZ"),
        ("Qafqazinfo", "qafqazinfo.az", "AZ"),
        ("Oxu.az", "oxu.az", "AZ"),
    ],
    "en": [
        ("IRNA English", "en.irna.ir", "IR"),
        ("Mehr News Agency", "en.mehrnews.com", "IR"),
        ("Tehran Times", "tehrantimes.com", "IR"),
        ("Trend News Agency", "en.trend.az", "AZ"),
        ("AzerNews", "azernews.az", "AZ"),
        ("Caspian News", "caspiannews.com", "other"),
        ("Eurasianet", "eurasianet.org", "other"),
        ("Report.az English", "report.az/en", "AZ"),
    ],
    "ru": [
        ("Report.az на русском", "report.az/ru", "AZ"),
        ("Trend на русском", "trend.az", "AZ"),
        ("Sputnik Азербайджан", "sputnik.az", "AZ"),
        ("Vesti.az", "vesti.az", "AZ"),
        ("ИРНА на русском", "ru.irna.ir", "IR"),
        ("Caliber.az", "caliber.az", "AZ"),
    ],
}

FILL: dict[str, dict[str, list[str]]] = {
    "en": {
        "country": ["Turkey", "Russia", "Georgia", "Kazakhstan", "Pakistan", "Iraq", "Qatar",
                    "Uzbekistan", "Armenia", "China", "India", "Turkmenistan"],
        "month": ["January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December"],
        "city": ["Tehran", "Isfahan", "Mashhad", "Shiraz", "Ardabil", "Urmia", "Ganja",
                 "Sumgait", "Lankaran", "Nakhchivan", "Guba", "Zanjan"],
        "team": ["Esteghlal", "Persepolis", "Sepahan", "Neftchi", "Qarabag", "Sabah",
                 "Foolad", "Zira"],
    },
    "fa": {
        "country": ["ترکیه", "روسیه", "گرجستان", "قزاقستان", "پاکستان", "عراق", "قطر",
                    "ازبکستان", "ارمنستان", "چین", "هند", "ترکمنستان"],
        "month": ["فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان",
                  "آذر", "دی", "بهمن", "اسفند"],
        "city": ["تهران", "اصفهان", "مشهد", "شیراز", "اردبیل", "ارومیه", "زنجان", "مراغه",
                 "مرند", "اهر", "میانه", "سراب"],
        "team": ["استقلال", "پرسپولیس", "سپاهان", "فولاد", "گل گهر", "ملوان"],
    },
    "az": {
        "country": ["Türkiyə", "Rusiya", "Gürcüstan", "Qazaxıstan", "Pakistan", "İraq",
                    "Qətər", "Özbəkistan", "Çin", "Hindistan", "Türkmənistan"],
        "month": ["yanvar", "fevral", "mart", "aprel", "may", "iyun", "iyul", "avqust",
                  "sentyabr", "oktyabr", "noyabr", "dekabr"],
        "city": ["Gəncə", "Sumqayıt", "Lənkəran", "Şəki", "Quba", "Qəbələ", "Mingəçevir",
                 "Şamaxı", "Naxçıvan", "Xaçmaz"],
        "team": ["Neftçi", "Qarabağ", "Sabah", "Zirə", "Səbail", "Turan Tovuz"],
    },
    "ru": {
        "country": ["Турция", "Россия", "Грузия", "Казахстан", "Пакистан", "Ирак", "Катар",
                    "Узбекистан", "Китай", "Индия", "Туркменистан"],
        "month": ["январе", "феврале", "марте", "апреле", "мае", "июне", "июле", "августе",
                  "сентябре", "октябре", "ноябре", "декабре"],
        "city": ["Гянджа", "Сумгайыт", "Ленкорань", "Шеки", "Губа", "Габала", "Мингячевир",
                 "Шемаха", "Нахчыван", "Хачмаз"],
        "team": ["Нефтчи", "Карабах", "Сабах", "Зиря", "Сабаил", "Туран Товуз"],
    },
}  # fmt: skip

# Unrelated news: (title, lead sentence). Some are near misses on purpose (Tabriz, Baku, Araz,
# tractors, tourism) so that the matcher's veto and group logic is exercised, not just its
# first-token filter.
UNRELATED: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("Central bank keeps key rate at {n} percent",
         "The central bank left its benchmark rate unchanged at {n} percent, citing easing inflation."),
        ("Tehran Stock Exchange index gains {n},000 points",
         "The main index of the Tehran Stock Exchange rose by {n},000 points in Sunday's trading."),
        ("{team} beat {team2} {a}-{b} in league match",
         "{team} came from behind to beat {team2} {a}-{b} in front of a full stadium."),
        ("Heavy snow closes mountain roads in {city} province",
         "Road police in {city} said several mountain passes were closed after heavy snowfall."),
        ("Non-oil exports rise {n} percent in first {m} months",
         "Customs data show non-oil exports grew {n} percent year on year."),
        ("President receives credentials of new ambassador of {country}",
         "The president received the credentials of the new ambassador of {country} on Monday."),
        ("Baku to host international oil and gas exhibition in {month}",
         "More than {n}0 companies from {country} and other countries will attend the Baku show."),
        ("Azerbaijan's GDP grows {n} percent in January-{month}",
         "The State Statistics Committee said GDP grew {n} percent, led by the non-oil sector."),
        ("Tabriz carpet exhibition opens with {n}0 exhibitors",
         "Weavers from East Azerbaijan show hand-knotted carpets at the Tabriz international fair."),
        ("Tractor fans celebrate derby win in Tabriz",
         "Thousands of Tractor supporters filled the Yadegar-e Emam stadium for the league derby."),
        ("SOCAR signs gas supply deal with {country}",
         "SOCAR will deliver up to {n} billion cubic metres of gas a year under the agreement."),
        ("Wheat harvest expected to reach {n} million tonnes",
         "Farmers have started harvesting wheat; officials expect a crop of {n} million tonnes."),
        ("Earthquake of magnitude {n}.{m} jolts {city}, no casualties reported",
         "A moderate earthquake shook {city} early on Tuesday; no damage was reported."),
        ("Araz river water level falls after dry summer",
         "Hydrologists warn that the Araz river carries {n} percent less water than last year."),
        ("Foreign ministers of Iran and {country} discuss regional issues by phone",
         "The two ministers discussed bilateral ties and regional developments in a phone call."),
        ("New metro line opens in {city}",
         "The {n} km line links the city centre with the eastern suburbs."),
        ("Azerbaijan and {country} sign memorandum on renewable energy",
         "The memorandum covers solar and wind projects with a capacity of {n}00 megawatts."),
        ("Inflation eases to {n} percent in {month}",
         "Annual consumer price inflation slowed to {n} percent, the statistics centre said."),
    ],
    "fa": [
        ("نرخ تورم ماهانه به {n} درصد رسید",
         "مرکز آمار اعلام کرد نرخ تورم نقطه به نقطه در ماه {month} به {n} درصد رسید."),
        ("شاخص کل بورس تهران {n} هزار واحد رشد کرد",
         "شاخص کل بورس اوراق بهادار تهران در معاملات امروز {n} هزار واحد افزایش یافت."),
        ("بارش برف راه‌های کوهستانی {city} را مسدود کرد",
         "پلیس راه اعلام کرد چند گردنه در استان {city} به دلیل بارش شدید برف بسته شد."),
        ("نمایشگاه بین‌المللی فرش دستباف در تبریز گشایش یافت",
         "بیش از {n}0 تولیدکننده فرش آذربایجان شرقی در این نمایشگاه حضور دارند."),
        ("{team} در ورزشگاه یادگار امام تبریز به پیروزی رسید",
         "تیم تراکتور در دیدار هفته {n} لیگ برتر با نتیجه {a} بر {b} پیروز شد."),
        ("رئیس‌جمهور استوارنامه سفیر جدید {country} را دریافت کرد",
         "سفیر جدید {country} استوارنامه خود را تقدیم رئیس‌جمهور کرد."),
        ("برداشت گندم در {city} آغاز شد",
         "پیش‌بینی می‌شود امسال {n} هزار تن گندم از مزارع {city} برداشت شود."),
        ("صادرات غیرنفتی {n} درصد افزایش یافت",
         "بر اساس آمار گمرک، صادرات غیرنفتی در {m} ماه نخست سال {n} درصد رشد داشته است."),
        ("زلزله {n}.{m} ریشتری {city} را لرزاند",
         "این زمین‌لرزه خسارت جانی در پی نداشت و تیم‌های ارزیاب به منطقه اعزام شدند."),
        ("وزیر امور خارجه با همتای {country} تلفنی گفت‌وگو کرد",
         "دو وزیر درباره روابط دوجانبه و تحولات منطقه‌ای گفت‌وگو کردند."),
        ("خط جدید مترو در {city} افتتاح شد",
         "این خط به طول {n} کیلومتر مرکز شهر را به حومه شرقی متصل می‌کند."),
        ("کاهش سطح آب دریاچه ارومیه ادامه دارد",
         "کارشناسان می‌گویند تراز آب دریاچه ارومیه {n} سانتی‌متر کاهش یافته است."),
        ("قیمت طلا و سکه امروز {n} درصد کاهش یافت",
         "قیمت سکه تمام بهار آزادی در بازار تهران کاهش یافت."),
        ("همایش ملی زبان و ادبیات ترکی در تبریز برگزار شد",
         "استادان دانشگاه تبریز و پژوهشگران {country} در این همایش سخنرانی کردند."),
    ],
    "az": [
        ("Mərkəzi Bank uçot dərəcəsini {n} faizdə saxladı",
         "Mərkəzi Bankın İdarə Heyəti uçot dərəcəsini dəyişməz saxlamaq qərarına gəlib."),
        ("Bakıda beynəlxalq neft və qaz sərgisi açılıb",
         "Sərgidə {country} daxil olmaqla {n}0 ölkədən şirkətlər iştirak edir."),
        ("{city} rayonunda qar yağışı yolları bağladı",
         "Yol polisi bildirib ki, {city} istiqamətində bəzi yollarda hərəkət məhdudlaşdırılıb."),
        ("Azərbaycanın ÜDM-i {n} faiz artıb",
         "Dövlət Statistika Komitəsinin məlumatına görə, qeyri-neft sektoru {n} faiz artıb."),
        ("Prezident İlham Əliyev {country} səfirinin etimadnaməsini qəbul edib",
         "Prezident yeni təyin olunmuş səfirin etimadnaməsini qəbul edib."),
        ("{team} {team2} komandasını {a}:{b} hesabı ilə məğlub edib",
         "Premyer Liqanın {n}-ci turunda {team} qələbə qazanıb."),
        ("SOCAR {country} ilə qaz təchizatı sazişi imzalayıb",
         "Saziş ildə {n} milyard kubmetr qazın tədarükünü nəzərdə tutur."),
        ("Araz çayında suyun səviyyəsi aşağı düşüb",
         "Mütəxəssislər bildirir ki, çayda su keçən ilə nisbətən {n} faiz azdır."),
        ("{city} şəhərində yeni məktəb binası istifadəyə verilib",
         "{n}00 şagird yerlik məktəb binası müasir avadanlıqla təchiz olunub."),
        ("Azərbaycan və {country} bərpa olunan enerji üzrə memorandum imzalayıb",
         "Memorandum {n}00 meqavat gücündə günəş və külək layihələrini əhatə edir."),
        ("İnflyasiya {month} ayında {n} faizə düşüb",
         "İllik inflyasiya {n} faiz təşkil edib."),
    ],
    "ru": [
        ("ЦБ Азербайджана сохранил учетную ставку на уровне {n}%",
         "Правление Центрального банка решило оставить учетную ставку без изменений."),
        ("В Баку открылась международная выставка нефти и газа",
         "В выставке участвуют компании из {n}0 стран, в том числе из страны {country}."),
        ("Снегопад затруднил движение в районе {city}",
         "Дорожная полиция сообщила о закрытии нескольких горных дорог."),
        ("ВВП Азербайджана вырос на {n}%",
         "По данным Госкомстата, ненефтяной сектор вырос на {n}%."),
        ("«{team}» обыграл «{team2}» со счетом {a}:{b}",
         "В {n}-м туре Премьер-лиги «{team}» одержал победу."),
        ("SOCAR подписала соглашение о поставках газа со страной {country}",
         "Соглашение предусматривает поставку до {n} млрд кубометров газа в год."),
        ("Уровень воды в реке Араз снизился после засушливого лета",
         "По данным гидрологов, река несет на {n}% меньше воды, чем год назад."),
        ("Инфляция в {month} замедлилась до {n}%",
         "Годовая инфляция составила {n}%, сообщил Госкомстат."),
        ("В городе {city} открылась новая школа",
         "Новое здание рассчитано на {n}00 учеников."),
        ("Президент принял верительные грамоты посла, представляющего страну {country}",
         "Президент принял верительные грамоты нового посла."),
        ("Землетрясение магнитудой {n}.{m} произошло в районе {city}",
         "Жертв и разрушений нет, сообщили в МЧС."),
    ],
}  # fmt: skip

# About a commitment: (title, lead sentence), in the phrasings outlets use.
RELATED: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("Iran Air launches {n} weekly Tabriz-Baku flights from {month}",
         "Iran Air will operate {n} weekly flights between Tabriz and Baku from {month}."),
        ("First Tabriz–Baku flight lands in Baku with {n}0 passengers",
         "The inaugural flight from Tabriz landed at Heydar Aliyev airport in Baku."),
        ("AZAL to resume Baku-Tabriz flights in {month} with {n} flights a week",
         "Azerbaijan Airlines said flights from Baku to Tabriz would resume twice a week."),
        ("Construction of Aghband-Kalala bridge over Araz {n}0 percent complete",
         "Work on the Aghband–Kalaleh road bridge across the Araz river is {n}0 percent complete."),
        ("Iran and Azerbaijan to open Aghband-Kalaleh road bridge in {month}",
         "The bridge links Kalaleh in Iran with Aghband in Zangilan over the Araz river."),
        ("Khodaafarin border crossing to open for passengers in {month}",
         "Officials said the Khoda Afarin crossing on the border would open for passenger traffic."),
        ("{n} Iranian engineering companies join reconstruction of Karabakh",
         "Iranian firms from East Azerbaijan signed contracts for reconstruction work in the liberated territories."),
        ("Joint industrial park with Iran planned in Jabrayil on {n}0 hectares",
         "Iran and Azerbaijan discussed a joint industrial park in the Araz Valley, Jabrayil."),
        ("Tabriz tour operators offer {n}-day packages to Baku",
         "Tour operators in Tabriz now sell tour packages to Baku for Nowruz."),
        ("{n}00 patients from Azerbaijan treated in Tabriz hospitals",
         "Health tourism: {n}00 patients from Azerbaijan were treated in Tabriz hospitals this year."),
        ("Iran Tractor to open representative office in Baku in {month}",
         "ITMCO, the Tabriz tractor maker, opened a representative office in Azerbaijan."),
        ("Araz corridor: road via Aghband to Nakhchivan through Iran",
         "The Araz corridor road from Aghband to Nakhchivan through Iran will be {n}0 km long."),
    ],
    "fa": [
        ("پرواز تبریز باکو از {month} هفته‌ای {n} بار برقرار می‌شود",
         "مدیرکل فرودگاه تبریز گفت پرواز تبریز - باکو هفته‌ای {n} بار انجام می‌شود."),
        ("نخستین پرواز مستقیم تبریز - باکو با {n}0 مسافر انجام شد",
         "هواپیمای ایران ایر با {n}0 مسافر از فرودگاه تبریز به مقصد باکو پرواز کرد."),
        ("ساخت پل آغبند - کلاله بر روی رود ارس {n}0 درصد پیشرفت دارد",
         "پل مرزی آغ بند کلاله بر روی رود ارس تا پایان سال افتتاح می‌شود."),
        ("گذرگاه مرزی خداآفرین از {month} برای تردد مسافران بازگشایی می‌شود",
         "مرز خدا آفرین با جمهوری آذربایجان برای تردد مسافران آماده می‌شود."),
        ("حضور {n} شرکت فنی و مهندسی آذربایجان شرقی در بازسازی قره‌باغ",
         "شرکت های ایرانی در بازسازی مناطق آزاد شده قره باغ مشارکت می‌کنند."),
        ("ایجاد شهرک صنعتی مشترک ایران و جمهوری آذربایجان در قره باغ در {n}0 هکتار",
         "شهرک صنعتی مشترک در مناطق آزاد شده قره باغ برای شرکت‌های ایرانی ایجاد می‌شود."),
        ("تورهای {n} روزه گردشگری تبریز به باکو راه‌اندازی شد",
         "دفاتر خدمات مسافرتی تبریز تور باکو را برای گردشگران جمهوری آذربایجان برگزار می‌کنند."),
        ("گردشگری سلامت؛ {n}00 بیمار جمهوری آذربایجان در بیمارستان‌های تبریز",
         "امسال {n}00 بیمار از جمهوری آذربایجان برای درمان به تبریز سفر کردند."),
        ("نمایندگی شرکت تراکتورسازی تبریز در باکو در {month} افتتاح می‌شود",
         "نمایندگی تراکتور سازی تبریز در جمهوری آذربایجان آغاز به کار کرد."),
        ("کریدور ارس از آغبند تا نخجوان {n}0 کیلومتر از خاک ایران عبور می‌کند",
         "مسیر جاده‌ای آغ بند به نخجوان از طریق ایران {n}0 کیلومتر طول دارد."),
    ],
    "az": [
        ("Təbriz-Bakı aviareysləri {month} ayından həftədə {n} dəfə bərpa olunur",
         "Təbrizdən Bakıya uçuşlar həftədə {n} dəfə həyata keçiriləcək."),
        ("Ağbənd-Kələlə körpüsünün tikintisi {n}0 faiz tamamlanıb",
         "Araz çayı üzərində körpünün tikintisi {n}0 faiz tamamlanıb."),
        ("Xudafərin sərhəd keçid məntəqəsi {month} ayında sərnişinlər üçün açılır",
         "Xudafərin gömrük keçid məntəqəsi {month} ayında istifadəyə veriləcək."),
        ("{n} İran şirkəti Qarabağın bərpasında iştirak edir",
         "Təbriz şirkətləri azad edilmiş ərazilərdə bərpa işlərinə qoşulub."),
        ("Araz dəhlizi: Ağbənddən Naxçıvana İran ərazisindən {n}0 km yol",
         "Araz nəqliyyat dəhlizi İran ərazisindən keçən avtomobil yolu ilə Naxçıvana çıxacaq."),
        ("Təbriz turoperatorları Bakıya {n} günlük tur paketləri təklif edir",
         "Təbrizdən Bakıya turist qrupları səfər edəcək."),
    ],
    "ru": [
        ("AZAL возобновляет рейсы Баку — Тебриз в {month}: {n} рейса в неделю",
         "Авиакомпания AZAL будет выполнять рейсы из Баку в Тебриз {n} раза в неделю."),
        ("Строительство моста Агбенд — Калале через Аракс завершено на {n}0%",
         "Мост через Аракс свяжет Агбенд в Зангиланском районе с Калале в Иране."),
        ("Пункт пропуска Худаферин откроется для пассажиров в {month}",
         "Пограничный переход Худаферин на границе с Ираном откроется в {month}."),
        ("{n} иранских компаний участвуют в восстановлении Карабаха",
         "Иранские строительные компании подписали контракты на восстановление освобожденных территорий."),
        ("Аразский коридор длиной {n}0 км соединит Агбенд с Нахчываном через Иран",
         "Автодорога через территорию Ирана соединит Агбенд с Нахчываном."),
        ("Тебризские туроператоры предлагают {n}-дневные туры в Азербайджан",
         "Туроператоры Тебриза начали продажу турпакетов в Баку."),
    ],
}  # fmt: skip

# Further sentences that pad summaries to a realistic length (two to four per item).
FILLER: dict[str, list[str]] = {
    "en": [
        "Officials said further details would be announced in the coming weeks.",
        "The decision was taken at a meeting of the relevant commission on Sunday.",
        "Experts expect the figures to improve in the second half of the year.",
        "The ministry said the plan had been approved by the cabinet.",
        "Local media reported that preparations were under way.",
        "The agency did not give a timetable for the next steps.",
        "Both sides stressed the importance of regional cooperation.",
        "The report was published on the ministry's website.",
    ],
    "fa": [
        "به گفته مسئولان جزئیات بیشتر در هفته‌های آینده اعلام می‌شود.",
        "این تصمیم در نشست کمیسیون مربوط در روز یکشنبه گرفته شد.",
        "کارشناسان انتظار دارند این ارقام در نیمه دوم سال بهبود یابد.",
        "وزارتخانه اعلام کرد این طرح به تصویب هیئت وزیران رسیده است.",
        "رسانه‌های محلی از آغاز آماده‌سازی‌ها خبر دادند.",
        "دو طرف بر اهمیت همکاری‌های منطقه‌ای تأکید کردند.",
        "این گزارش در پایگاه اطلاع‌رسانی وزارتخانه منتشر شد.",
    ],
    "az": [
        "Rəsmilər bildirib ki, ətraflı məlumat yaxın həftələrdə açıqlanacaq.",
        "Qərar bazar günü keçirilən iclasda qəbul edilib.",
        "Ekspertlər ilin ikinci yarısında göstəricilərin yaxşılaşacağını gözləyir.",
        "Nazirlik bildirib ki, plan Nazirlər Kabineti tərəfindən təsdiqlənib.",
        "Yerli media hazırlıq işlərinin davam etdiyini xəbər verib.",
        "Tərəflər regional əməkdaşlığın əhəmiyyətini vurğulayıblar.",
    ],
    "ru": [
        "Подробности будут объявлены в ближайшие недели, сообщили официальные лица.",
        "Решение было принято на заседании профильной комиссии в воскресенье.",
        "Эксперты ожидают улучшения показателей во втором полугодии.",
        "В министерстве сообщили, что план одобрен кабинетом министров.",
        "Местные СМИ сообщили, что подготовительные работы продолжаются.",
        "Стороны подчеркнули важность регионального сотрудничества.",
    ],
}


@dataclass(frozen=True)
class FeedInfo:
    name: str
    path: str
    language: str
    country: str
    outlet: str


@dataclass
class RenderedFeed:
    info: FeedInfo
    body: bytes
    body_gzip: bytes
    etag: str
    last_modified: str
    modified_at: datetime
    related: int = 0  # items generated from a RELATED template


@dataclass
class Corpus:
    feeds: list[RenderedFeed] = field(default_factory=list)

    @property
    def related(self) -> int:
        return sum(f.related for f in self.feeds)


def _values(language: str, rng: random.Random) -> dict[str, str]:
    """One item's placeholder values, shared by its title and lead so that they agree."""
    pools = FILL[language]
    teams = rng.sample(pools["team"], 2)
    return {
        "n": str(rng.randint(2, 9)),
        "m": str(rng.randint(1, 9)),
        "a": str(rng.randint(0, 4)),
        "b": str(rng.randint(0, 4)),
        "country": rng.choice(pools["country"]),
        "month": rng.choice(pools["month"]),
        "city": rng.choice(pools["city"]),
        "team": teams[0],
        "team2": teams[1],
    }


def _slug(index: int, language: str) -> str:
    return f"{index:05d}-{language}"


def render_feed(
    index: int, items: int, *, seed: int, now: datetime, related_share: float = RELATED_SHARE
) -> RenderedFeed:
    """One feed's XML, deterministic for (index, items, seed); dates are relative to `now`."""
    rng = random.Random(seed * 1_000_003 + index)
    language = LANGUAGES[index % len(LANGUAGES)]
    outlets = OUTLETS[language]
    outlet, domain, side = outlets[(index // len(LANGUAGES)) % len(outlets)]
    info = FeedInfo(
        name=f"bench-{index:03d}-{language}",
        path=f"/feeds/{index:03d}/rss.xml",
        language=language,
        country=side,
        outlet=outlet,
    )
    entries: list[str] = []
    related = 0
    newest = now - timedelta(minutes=rng.randint(1, 30))
    for i in range(items):
        is_related = rng.random() < related_share
        pool = RELATED if is_related else UNRELATED
        title_t, lead_t = rng.choice(pool[language])
        related += is_related
        values = _values(language, rng)
        title = title_t.format(**values)
        sentences = [lead_t.format(**values)]
        sentences += rng.sample(FILLER[language], rng.randint(2, 4))
        published = newest - timedelta(minutes=i * rng.randint(20, 90))
        article = 3_000_000 + index * 1_000 + i
        host = domain if "/" not in domain else domain.split("/")[0]
        prefix = "" if "/" not in domain else "/" + domain.split("/", 1)[1]
        url = f"https://www.{host}{prefix}/news/{article}/{_slug(article, language)}"
        summary = "".join(f"<p>{s}</p>" for s in sentences)
        entries.append(
            "<item>"
            f"<title>{escape(title)}</title>"
            f"<link>{escape(url)}</link>"
            f"<description><![CDATA[{summary}]]></description>"
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f'<guid isPermaLink="false">{domain}-{article}</guid>'
            "</item>"
        )
    modified = newest.replace(microsecond=0)
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0"><channel>'
        f"<title>{escape(outlet)}</title>"
        f"<link>https://www.{domain}/</link>"
        f"<description>{escape(outlet)} latest news</description>"
        f"<language>{language}</language>"
        f"<lastBuildDate>{format_datetime(modified)}</lastBuildDate>"
        + "".join(entries)
        + "</channel></rss>\n"
    )
    body = xml.encode("utf-8")
    return RenderedFeed(
        info=info,
        body=body,
        body_gzip=gzip.compress(body, compresslevel=6, mtime=0),
        etag='"' + hashlib.sha1(body).hexdigest()[:20] + '"',
        last_modified=format_datetime(modified, usegmt=True),
        modified_at=modified,
        related=related,
    )


def render_corpus(feeds: int, items: int, *, seed: int = 1, now: datetime | None = None) -> Corpus:
    now = now or datetime.now(UTC)
    return Corpus([render_feed(i, items, seed=seed, now=now) for i in range(feeds)])


# --- server ------------------------------------------------------------------------------------


def host_address(index: int) -> str:
    """127.0.0.2, 127.0.0.3, …, 127.0.1.0, … — Linux routes all of 127.0.0.0/8 to loopback."""
    n = index + 2
    return f"127.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


class _Site:
    """Pre-rendered responses by path, shared by every listening socket."""

    def __init__(self, corpus: Corpus, use_gzip: bool) -> None:
        self.use_gzip = use_gzip
        self.by_path = {f.info.path: f for f in corpus.feeds}
        self.counts: dict[str, int] = {}
        self._date = ""
        self._date_at = 0.0

    def date(self) -> str:
        now = time.time()
        if now - self._date_at >= 1.0:
            self._date = format_datetime(datetime.now(UTC), usegmt=True)
            self._date_at = now
        return self._date

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def respond(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        path, _, query = target.partition("?")
        if path == "/__stats":
            payload = json.dumps(self.counts).encode()
            if "reset=1" in query:
                self.counts = {}
            return self._message(200, "OK", payload, "application/json", {})
        feed = self.by_path.get(path)
        if feed is None:
            self.count("404")
            return self._message(404, "Not Found", b"no such feed\n", "text/plain", {})
        validators = {
            "ETag": feed.etag,
            "Last-Modified": feed.last_modified,
            "Cache-Control": "max-age=60",
        }
        if self._not_modified(feed, headers):
            self.count("304")
            return self._message(304, "Not Modified", b"", None, validators, head_only=True)
        self.count("200")
        extra = dict(validators)
        extra["Vary"] = "Accept-Encoding"
        body = feed.body
        if self.use_gzip and "gzip" in headers.get("accept-encoding", ""):
            body = feed.body_gzip
            extra["Content-Encoding"] = "gzip"
        return self._message(
            200,
            "OK",
            body,
            "application/rss+xml; charset=utf-8",
            extra,
            head_only=method == "HEAD",
        )

    @staticmethod
    def _not_modified(feed: RenderedFeed, headers: dict[str, str]) -> bool:
        inm = headers.get("if-none-match")
        if inm is not None:
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            return "*" in tags or feed.etag in tags
        ims = headers.get("if-modified-since")
        if ims:
            try:
                return parsedate_to_datetime(ims) >= feed.modified_at
            except (TypeError, ValueError):
                return False
        return False

    def _message(
        self,
        status: int,
        reason: str,
        body: bytes,
        content_type: str | None,
        extra: dict[str, str],
        head_only: bool = False,
    ) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {self.date()}", "Server: bench-feeds"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        if status != 304:
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{k}: {v}" for k, v in extra.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only or status == 304 else head + body


class _Protocol(asyncio.Protocol):
    def __init__(self, site: _Site) -> None:
        self.site = site
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 65536:
                    self.transport.close()
                return
            head = self.buffer[:end].decode("latin-1")
            self.buffer = self.buffer[end + 4 :]
            request_line, *header_lines = head.split("\r\n")
            parts = request_line.split(" ")
            if len(parts) != 3:
                self.transport.close()
                return
            method, target, version = parts
            headers: dict[str, str] = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or "0")
            self.buffer = self.buffer[length:]  # a request body (none expected) is skipped
            self.transport.write(self.site.respond(method, target, headers))
            if version == "HTTP/1.0" or headers.get("connection", "").lower() == "close":
                self.transport.close()
                return


async def serve(corpus: Corpus, hosts: int, use_gzip: bool, announce: bool = True) -> None:
    site = _Site(corpus, use_gzip)
    loop = asyncio.get_running_loop()
    servers = []
    addresses: list[tuple[str, int]] = []
    for h in range(hosts):
        server = await loop.create_server(
            lambda: _Protocol(site), host_address(h), 0, backlog=1024, reuse_address=True
        )
        servers.append(server)
        addresses.append(server.sockets[0].getsockname()[:2])
    feeds = []
    for i, f in enumerate(corpus.feeds):
        host, port = addresses[i % hosts]
        feeds.append(
            {
                "name": f.info.name,
                "url": f"http://{host}:{port}{f.info.path}",
                "language": f.info.language,
                "country": f.info.country,
                "host": f"{host}:{port}",
            }
        )
    if announce:
        host, port = addresses[0]
        sys.stdout.write(
            json.dumps(
                {
                    "feeds": feeds,
                    "stats": f"http://{host}:{port}/__stats",
                    "hosts": hosts,
                    "bytes": sum(len(f.body) for f in corpus.feeds),
                    "bytes_gzip": sum(len(f.body_gzip) for f in corpus.feeds),
                    "related": corpus.related,
                    "gzip": use_gzip,
                }
            )
            + "\n"
        )
        sys.stdout.flush()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument(
        "--hosts", type=int, default=0, help="loopback addresses to spread over (0: one per feed)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-gzip", action="store_true", help="never send gzip bodies")
    args = parser.parse_args(argv)
    corpus = render_corpus(args.feeds, args.items, seed=args.seed)
    hosts = args.hosts or args.feeds
    asyncio.run(serve(corpus, min(hosts, args.feeds), not args.no_gzip))


if __name__ == "__main__":
    main()
