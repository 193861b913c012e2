"""Word lists for synthetic regions: Dutch first names, surnames, streets, places, schools.

Everything here must be representable in Windows-1252, because the somtoday-like SIS export is
written in that encoding (`check_cp1252` runs at import so a careless addition fails at once,
not halfway through a 150,000-student run). Names with é, ë, ï and apostrophes are here on
purpose: they are what breaks real encoding and matching code.

None of these are real people; combinations are random. E-mail addresses use the reserved
example domains (RFC 2606) so no message can ever reach a real mailbox.
"""

from __future__ import annotations

# (formal first name, roepnaam): the roepnaam differs now and then, as in real SIS data.
# Split by the name's usual gender only so that extra given names fit the first one.
YOUTH_FIRST_NAMES_M: tuple[tuple[str, str], ...] = (
    ("Daan", "Daan"), ("Sem", "Sem"), ("Lucas", "Lucas"), ("Levi", "Levi"), ("Finn", "Finn"),
    ("Milan", "Milan"), ("Noah", "Noah"), ("Jesse", "Jesse"), ("Bram", "Bram"), ("Luuk", "Luuk"),
    ("Thijs", "Thijs"), ("Stijn", "Stijn"), ("Ruben", "Ruben"), ("Thomas", "Tom"),
    ("Johannes", "Hannes"), ("Jayden", "Jayden"), ("Gijs", "Gijs"), ("Lars", "Lars"),
    ("Mees", "Mees"), ("Sven", "Sven"), ("Niels", "Niels"), ("Tygo", "Tygo"), ("Jens", "Jens"),
    ("Julian", "Julian"), ("Max", "Max"), ("Siem", "Siem"), ("Teun", "Teun"), ("Hugo", "Hugo"),
    ("Olivier", "Olivier"), ("Cornelis", "Kees"), ("Hendrik", "Henk"), ("Wouter", "Wouter"),
    ("Mohammed", "Mohammed"), ("Yusuf", "Yusuf"), ("Ayoub", "Ayoub"), ("Emir", "Emir"),
    ("Mert", "Mert"), ("Kerem", "Kerem"), ("Rayan", "Rayan"), ("Ilias", "Ilias"),
    ("Anass", "Anass"), ("Bilal", "Bilal"), ("Quinten", "Quinten"), ("Joël", "Joël"),
    ("Noël", "Noël"), ("Maël", "Maël"), ("Daniël", "Daniël"), ("Michaël", "Michael"),
    ("Raphaël", "Raf"), ("René", "René"), ("José", "José"), ("Noé", "Noé"), ("Jérôme", "Jérôme"),
    ("Kenji", "Kenji"), ("Tiago", "Tiago"), ("Rowan", "Rowan"), ("Robin", "Robin"),
    ("Samuel", "Sam"), ("Dani", "Dani"),
)  # fmt: skip
YOUTH_FIRST_NAMES_F: tuple[tuple[str, str], ...] = (
    ("Emma", "Emma"), ("Julia", "Julia"), ("Sophie", "Sophie"), ("Tess", "Tess"),
    ("Zoë", "Zoë"), ("Chloë", "Chloë"), ("Lotte", "Lotte"), ("Sara", "Sara"), ("Eva", "Eva"),
    ("Anna", "Anna"), ("Fenna", "Fenna"), ("Noor", "Noor"), ("Mila", "Mila"), ("Lisa", "Lisa"),
    ("Fleur", "Fleur"), ("Isa", "Isa"), ("Sanne", "Sanne"), ("Femke", "Femke"), ("Iris", "Iris"),
    ("Roos", "Roos"), ("Nina", "Nina"), ("Lieke", "Lieke"), ("Maud", "Maud"), ("Yara", "Yara"),
    ("Jasmijn", "Jasmijn"), ("Elisabeth", "Lisa"), ("Catharina", "Karin"),
    ("Johanna", "Jo"), ("Wilhelmina", "Mien"), ("Anaïs", "Anaïs"), ("Loïs", "Loïs"),
    ("Thaïs", "Thaïs"), ("Inès", "Inès"), ("Léa", "Léa"), ("Aïsha", "Aïsha"), ("Noëlle", "Noëlle"),
    ("Marié", "Marié"), ("Aya", "Aya"), ("Salma", "Salma"), ("Hiba", "Hiba"), ("Imane", "Imane"),
    ("Elif", "Elif"), ("Ilayda", "Ilayda"), ("Zeynep", "Zeynep"), ("Esra", "Esra"),
    ("Mariam", "Mariam"), ("Priya", "Priya"), ("Mei", "Mei"), ("Nadia", "Nadia"),
    ("Britt", "Britt"), ("Demi", "Demi"), ("Kim", "Kim"), ("Robin", "Robin"),
    ("Samantha", "Sam"), ("Daniëlle", "Dani"),
)  # fmt: skip

# Extra given names after the first: the older, formal names families still pass on.
MIDDLE_NAMES_M: tuple[str, ...] = (
    "Johannes", "Petrus", "Cornelis", "Jan", "Willem", "Jacobus", "Theodorus", "Wilhelmus",
    "Gerardus", "Hubertus", "Maria", "Ahmed", "Mustafa", "Gaël", "Adriaan", "Hendrik",
)  # fmt: skip
MIDDLE_NAMES_F: tuple[str, ...] = (
    "Maria", "Hendrika", "Geertruida", "Elisabeth", "Anna", "Sophia", "Adriana", "Margaretha",
    "Antonia", "Josephina", "Fatima", "Hélène", "Renée", "Johanna", "Cornelia", "Aïcha",
)  # fmt: skip

# Guardians are a generation older: different names, so a guardian rarely shares the child's.
ADULT_FIRST_NAMES: tuple[str, ...] = (
    "Mark", "Sandra", "Dennis", "Linda", "Erik", "Monique", "Jeroen", "Marieke", "Patrick",
    "Esther", "Martijn", "Wendy", "Bas", "Kim", "Sander", "Anouk", "Peter", "Ingrid", "Richard",
    "Marloes", "Mohamed", "Fatima", "Ahmet", "Hatice", "Abdel", "Khadija", "Hasan", "Ayse",
    "Raj", "Sunita", "Marcel", "Petra", "Johan", "Angélique", "Rogier", "Desiree", "Mireille",
    "Hüseyin", "Gülsen", "Zoë", "Mariëlle", "Daniëlle", "Michiel", "Ellen", "Ronald", "Yvonne",
)  # fmt: skip

# (voorvoegsel, achternaam); the prefix is separate, as Dutch registers keep it.
SURNAMES: tuple[tuple[str, str], ...] = (
    ("", "Jansen"), ("", "Bakker"), ("", "Visser"), ("", "Smit"), ("", "Meijer"),
    ("", "Mulder"), ("", "Bos"), ("", "Vos"), ("", "Peters"), ("", "Hendriks"), ("", "Dekker"),
    ("", "Brouwer"), ("", "Dijkstra"), ("", "Janssen"), ("", "Willems"), ("", "Koster"),
    ("", "Prins"), ("", "Huisman"), ("", "Kok"), ("", "Postma"), ("", "Kuipers"),
    ("", "Schouten"), ("", "Verhoeven"), ("", "Hoekstra"), ("", "Gerritsen"), ("", "Timmermans"),
    ("", "Boer"), ("", "Maas"), ("", "Sanders"), ("", "Scholten"), ("", "Wijnands"),
    ("", "Yilmaz"), ("", "Kaya"), ("", "Demir"), ("", "Çelik"), ("", "Öztürk"), ("", "Sahin"),
    ("", "Aydin"), ("", "El Amrani"), ("", "Bouzid"), ("", "Ouali"), ("", "Benali"),
    ("", "Haddou"), ("", "Nguyen"), ("", "Tran"), ("", "Ramdin"), ("", "Sewdien"),
    ("", "Martínez"), ("", "Gonçalves"), ("", "Lefèvre"), ("", "Müller"), ("", "Schröder"),
    ("", "Noël"), ("", "Hoëvenaars"), ("", "Ruïs"), ("", "D'Souza"), ("", "O'Neill"),
    ("de", "Vries"), ("de", "Jong"), ("de", "Boer"), ("de", "Groot"), ("de", "Bruijn"),
    ("de", "Wit"), ("de", "Graaf"), ("de", "Haan"), ("de", "Koning"), ("de", "Leeuw"),
    ("de", "Ruiter"), ("de", "Lange"), ("van", "Dijk"), ("van", "Leeuwen"), ("van", "Beek"),
    ("van", "Vliet"), ("van", "Wijk"), ("van", "Dam"), ("van", "Loon"), ("van", "Rijn"),
    ("van", "Gelder"), ("van", "Es"), ("van den", "Berg"), ("van den", "Broek"),
    ("van den", "Heuvel"), ("van den", "Bosch"), ("van der", "Meer"), ("van der", "Linden"),
    ("van der", "Heijden"), ("van der", "Veen"), ("van der", "Wal"), ("van der", "Zanden"),
    ("van de", "Ven"), ("van de", "Kamp"), ("van de", "Pol"), ("van 't", "Hof"),
    ("van 't", "Veer"), ("van 't", "Zand"), ("'t", "Hart"), ("'t", "Hooft"), ("in 't", "Veld"),
    ("ter", "Horst"), ("ter", "Haar"), ("ten", "Brink"), ("ten", "Have"), ("op de", "Weegh"),
    ("van", "Hoëll"), ("le", "Clercq"), ("d'", "Ancona"), ("El", "Idrissi"),
)  # fmt: skip

GUARDIAN_RELATIONS: tuple[str, ...] = ("ouder", "ouder", "ouder", "ouder", "voogd", "pleegouder")
LEGAL_GUARDIAN_RELATIONS: tuple[str, ...] = ("ouder", "ouder", "ouder", "ouder", "ouder", "voogd")

# Street names are root + suffix, written together the Dutch way ("Prins Hendriklaan").
STREET_ROOTS: tuple[str, ...] = (
    "Kerk", "Molen", "School", "Dorps", "Stations", "Beuken", "Eiken", "Linden", "Berken",
    "Wilgen", "Populieren", "Esdoorn", "Iepen", "Kastanje", "Hazelaar", "Rozen", "Tulpen",
    "Narcissen", "Lelie", "Margriet", "Zonnebloem", "Vlinder", "Merel", "Lijster", "Spreeuw",
    "Zwaluw", "Koekoek", "Reiger", "Meeuwen", "Kievit", "Prins Hendrik", "Koningin Juliana",
    "Wilhelmina", "Oranje", "Nassau", "Rembrandt", "Vermeer", "Van Gogh", "Mondriaan",
    "Frans Hals", "Jan Steen", "Vondel", "Bilderdijk", "Multatuli", "Huygens", "Spinoza",
    "Erasmus", "Thorbecke", "Burgemeester de Wit", "Dokter Schaepman", "Akker", "Weide",
    "Veld", "Brink", "Hoog", "Noord", "Zuid", "Oost", "West", "Haven", "Dijk", "Sluis", "Zand",
    "Heide", "Bos", "Park", "Van 't Hoff", "Hélène Swarth", "Émile Zola", "Kloos", "Gezelle",
    "Pater Damiaan", "Sint-Jans", "Anne Frank", "Aletta Jacobs", "Mgr. Nolens", "Boerhaave",
)  # fmt: skip
STREET_SUFFIXES: tuple[str, ...] = (
    "straat", "straat", "straat", "laan", "laan", "weg", "weg", "plein", "singel", "gracht",
    "hof", "kade", "dreef", "pad", "steeg", "erf", "wal",
)  # fmt: skip

# Place names are root + suffix; a few get a prefix such as "Nieuw-" or "'s-".
PLACE_ROOTS: tuple[str, ...] = (
    "Aal", "Ab", "Al", "Ame", "Ap", "Bar", "Bed", "Bel", "Ber", "Bie", "Bla", "Bol", "Bor",
    "Bra", "Bre", "Bun", "Da", "Del", "Die", "Dor", "Dro", "Ech", "Ede", "Eel", "Elst", "Em",
    "Gan", "Gel", "Gie", "Go", "Gro", "Ha", "Har", "Hee", "Hel", "Her", "Hil", "Hoog", "Hul",
    "Kam", "Kes", "Klei", "Laar", "Lee", "Lin", "Lo", "Maar", "Mep", "Mid", "Mol", "Nes",
    "Noor", "Oos", "Op", "Oud", "Pol", "Put", "Ren", "Rijs", "Roos", "Sche", "Sle", "Ste",
    "Tes", "Til", "Uit", "Val", "Vee", "Vel", "Vlie", "Vor", "Waal", "Wa", "Wes", "Win", "Wol",
    "Zand", "Zee", "Zie", "Zoe", "Zwa",
)  # fmt: skip
PLACE_SUFFIXES: tuple[str, ...] = (
    "dijk", "dam", "veen", "horst", "hoven", "wijk", "broek", "loo", "beek", "meer", "kerk",
    "drecht", "hem", "stede", "zijl", "woude", "rade", "ingen", "um", "sum", "eind", "hout",
    "werd", "wolde", "voorde", "burg", "berg", "donk", "schoten", "lare",
)  # fmt: skip
PLACE_PREFIXES: tuple[str, ...] = ("Nieuw-", "Oud-", "Groot-", "Klein-", "Sint-", "'s-", "Ter ")

VO_SCHOOL_NAMES: tuple[str, ...] = (
    "Erasmus", "Comenius", "Thorbecke", "Huygens", "Da Vinci", "Montessori", "Stedelijk",
    "Christelijk", "Sint-Jozef", "Het Baken", "De Breul", "Het Noorderlicht", "Maerlant",
    "Spinoza", "Hervormd", "Dalton", "Vathorst", "De Ring", "Het Streek", "Pallas Athene",
    "Bonhoeffer", "Augustinus", "Ichthus", "Calvijn", "Carmel", "Van Lodenstein", "Pieter Zandt",
    "Jac. P. Thijsse", "Citadel", "Het Kwadrant", "De Nieuwe Veste", "Kalsbeek", "Udens",
    "Helen Parkhurst", "Hélène Kröller", "Sint-Odulphus", "Koning Willem II",
)  # fmt: skip
VO_SCHOOL_KINDS: dict[str, tuple[str, ...]] = {
    "breed": ("College", "Lyceum", "Scholengemeenschap", "Scholengroep"),
    "vmbo": ("Vakcollege", "Technasium", "vmbo"),
    "pro": ("Praktijkschool",),
    "vso": ("VSO", "Speciaal Onderwijs"),
}
MBO_NAME_FORMS: tuple[str, ...] = (
    "ROC {place}", "{place} College", "Vakschool {place}", "Techniek College {place}",
    "ROC {place}-{place2}", "Zorgcollege {place}", "Groen College {place}",
)  # fmt: skip

# What a mentor writes in part B. Short, generic, never tied to a real case.
SUPPORT_NEEDS: tuple[str, ...] = (
    "Dyslexie: extra tijd bij toetsen en voorleessoftware.",
    "Dyscalculie: rekenmachine en extra tijd.",
    "ADHD: vaste structuur, korte opdrachten, vooraf weten wat er komt.",
    "Autisme: voorspelbaarheid; wijzigingen in het rooster vooraf melden.",
    "Faalangst: rustige toetsruimte helpt.",
    "Ondersteuning Nederlandse taal (NT2), vooral bij schrijven.",
    "Fysieke beperking: lift en aangepaste werkplek nodig.",
    "Thuissituatie vraagt aandacht; contact loopt via de mentor.",
    "Concentratieproblemen; werkt goed met een weekplanning.",
    "Slechthorend: vooraan zitten, ringleiding in het lokaal.",
    "Heeft hulp nodig bij plannen en bij het bijhouden van de agenda.",
    "Spreekt zich moeilijk uit in groepen; begeleiding bij stage-intake gewenst.",
)


def check_cp1252(*groups: object) -> None:
    """Fail fast when a word would not survive the Windows-1252 SIS export."""
    for group in groups:
        for text in _strings(group):
            try:
                text.encode("cp1252")
            except UnicodeEncodeError:
                raise ValueError(f"{text!r} cannot be written in Windows-1252") from None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, tuple | list):
        return [s for v in value for s in _strings(v)]
    return []


check_cp1252(
    YOUTH_FIRST_NAMES_M,
    YOUTH_FIRST_NAMES_F,
    MIDDLE_NAMES_M,
    MIDDLE_NAMES_F,
    ADULT_FIRST_NAMES,
    SURNAMES,
    GUARDIAN_RELATIONS,
    LEGAL_GUARDIAN_RELATIONS,
    STREET_ROOTS,
    STREET_SUFFIXES,
    PLACE_ROOTS,
    PLACE_SUFFIXES,
    PLACE_PREFIXES,
    VO_SCHOOL_NAMES,
    VO_SCHOOL_KINDS,
    MBO_NAME_FORMS,
    SUPPORT_NEEDS,
)
