"""Name pools of the generated shop's customers, one per language, and their e-mail addresses.

Emails are unique by construction, without remembering the ones handed out: within a pool
the k-th identified customer gets the (first name, last name) pair number ``(a*k + b) mod N``
(a permutation of the N pairs), and ``k // N`` as a numeric suffix once the pairs run out.
First names are made disjoint across pools (in their ASCII form), so two pools can never
produce the same local part, and names hold only ``a-z`` so separators and suffixes parse back.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Pool key -> (female first names, male first names, last names). Space separated; a
# "display|ascii" entry gives the ASCII spelling used in e-mails (needed for Japanese).
_RAW_POOLS: dict[str, tuple[str, str, str]] = {
    "en": (
        "Emma Olivia Ava Sophia Isabella Mia Charlotte Amelia Harper Evelyn Abigail Emily "
        "Elizabeth Sofia Avery Ella Scarlett Grace Chloe Victoria Riley Aria Lily Aubrey Zoey "
        "Penelope Layla Nora Hannah Zoë Hazel Ellie Stella Natalie Leah Audrey Savannah "
        "Brooklyn Claire Skylar Lucy Paisley Anna Caroline Kennedy Allison Sarah Madison Megan",
        "Liam Noah Oliver Elijah James William Benjamin Lucas Henry Alexander Mason Michael "
        "Ethan Daniel Jacob Logan Jackson Levi Sebastian Mateo Jack Owen Theodore Aiden Samuel "
        "Joseph John David Wyatt Matthew Luke Asher Carter Julian Grayson Leo Jayden Gabriel "
        "Isaac Lincoln Anthony Hudson Dylan Ezra Thomas Charles Christopher Jaxon Maverick",
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Moore Jackson "
        "Martin Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott "
        "Hill Green Adams Baker Nelson Mitchell Campbell Roberts Carter Phillips Evans Turner "
        "Parker Collins Edwards Stewart Morris Murphy Cook Rogers Morgan Cooper Peterson Bailey "
        "Reed Kelly Howard Cox Ward Richardson Watson Brooks Wood James Bennett Gray Hughes "
        "Price Sanders Myers Long Ross Foster Powell Jenkins Perry Russell Sullivan Bell "
        "Coleman Butler Henderson Barnes Fisher Vasquez Simmons Graham Marshall Owens Harrison "
        "Gibson Wallace Hamilton O'Brien Patel Nguyen Kim Chen",
    ),
    "es": (
        "Lucía María Paula Daniela Valeria Carmen Alba Julia Marta Elena Irene Laura Claudia "
        "Noelia Raquel Nerea Ainhoa Rocío Pilar Begoña",
        "José Alejandro Pablo Javier Sergio Álvaro Adrián Diego Jorge Iván Rubén Raúl Héctor "
        "Íñigo Fernando Rodrigo Ignacio Gonzalo Andrés Jesús",
        "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín Jiménez "
        "Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres "
        "Domínguez Vázquez Ramos Gil Ramírez Serrano Blanco Molina Morales Suárez Ortega "
        "Delgado Castro Ortiz Rubio Marín Sanz Núñez Iglesias Medina Garrido Cortés Castillo "
        "Santos Lozano Guerrero Cano Prieto",
    ),
    "fr": (
        "Camille Léa Manon Chloé Inès Clémence Juliette Océane Mathilde Éloïse Margaux Pauline "
        "Amandine Céline Aurélie Hélène Sylvie Nathalie Brigitte Geneviève",
        "Lucas Hugo Théo Louis Nathan Enzo Maxime Antoine Clément Baptiste Quentin Julien "
        "Nicolas Mathieu Guillaume Sébastien Jérôme François Étienne Benoît",
        "Martin Bernard Dubois Petit Durand Leroy Moreau Simon Laurent Lefebvre Michel Garcia "
        "David Bertrand Roux Vincent Fournier Morel Girard André Lefèvre Mercier Dupont "
        "Lambert Bonnet François Martinez Legrand Garnier Faure Rousseau Blanc Guérin Muller "
        "Henry Roussel Nicolas Perrin Morin Mathieu Clément Gauthier Dumont Lopez Fontaine "
        "Chevalier Robin Masson Tremblay Gagnon Côté",
    ),
    "de": (
        "Lena Lea Anna Laura Lisa Julia Sarah Katharina Johanna Jana Sophie Marie Leonie "
        "Franziska Jülide Anja Sabine Ursula Birgit Heike",
        "Lukas Leon Jonas Finn Elias Felix Maximilian Paul Niklas Tim Jan Moritz Tobias "
        "Sebastian Florian Stefan Jürgen Uwe Klaus Dieter",
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer "
        "Koch Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger "
        "Hofmann Hartmann Lange Schmitt Werner Schmitz Krause Meier Lehmann Schmid Schulze "
        "Maier Köhler Herrmann König Walter Mayer Huber Kaiser Fuchs Peters Lang Scholz Möller "
        "Weiß Jung Hahn Vogel",
    ),
    "nl": (
        "Emma Tess Sanne Fenna Saar Noor Lotte Femke Anouk Maud Isa Julia Eva Roos Floor",
        "Daan Sem Bram Luuk Thijs Jesse Ruben Stijn Lars Joost Sander Bas Wouter Maarten Pieter",
        "de Jong Jansen de Vries van den Berg van Dijk Bakker Janssen Visser Smit Meijer "
        "de Boer Mulder de Groot Bos Vos Peters Hendriks van Leeuwen Dekker Brouwer de Wit "
        "Dijkstra Smits de Graaf van der Meer",
    ),
    "it": (
        "Giulia Francesca Chiara Sara Martina Alessia Federica Valentina Elisa Silvia Giorgia "
        "Ilaria Beatrice Alice Aurora",
        "Francesco Alessandro Lorenzo Matteo Andrea Gabriele Riccardo Tommaso Davide Giuseppe "
        "Luca Marco Simone Stefano Nicolò",
        "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo "
        "Conti De Luca Mancini Costa Giordano Rizzo Lombardi Moretti Barbieri Fontana Santoro "
        "Mariani Rinaldi Caruso Ferrara Galli Martini Leone",
    ),
    "pt": (
        "Ana Beatriz Larissa Fernanda Gabriela Juliana Camila Letícia Mariana Vitória Luana "
        "Bruna Thaís Yasmin Sofía",
        "João Gabriel Guilherme Rafael Gustavo Felipe Bruno Thiago Vinícius Rodrigo Leonardo "
        "Eduardo Henrique Caio Matheus",
        "Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa Ribeiro "
        "Martins Carvalho Almeida Lopes Soares Fernandes Vieira Barbosa Rocha Dias Nascimento "
        "Andrade Moreira Nunes Marques Machado Mendes Freitas",
    ),
    "in": (
        "Aadhya Ananya Diya Isha Kavya Meera Priya Riya Saanvi Sneha Pooja Neha Divya Shreya "
        "Aishwarya",
        "Aarav Aditya Arjun Ishaan Krishna Rohan Sai Vihaan Rahul Amit Vikram Karthik Siddharth "
        "Arnav Nikhil",
        "Sharma Verma Gupta Singh Kumar Reddy Iyer Nair Menon Rao Joshi Mehta Shah Desai "
        "Kulkarni Chatterjee Banerjee Mukherjee Das Bose Pillai Agarwal Malhotra Kapoor Chopra "
        "Bhat Yadav Mishra Pandey Srinivasan",
    ),
    "ja": (
        "陽菜|hina 結衣|yui 葵|aoi 美咲|misaki さくら|sakura 彩|aya 優花|yuka 真由|mayu "
        "菜々子|nanako 恵|megumi 由美|yumi 愛|ai",
        "太郎|taro 翔太|shota 大輝|daiki 蓮|ren 悠真|yuma 拓海|takumi 健太|kenta 翼|tsubasa "
        "直樹|naoki 誠|makoto 浩|hiroshi 亮|ryo",
        "山田|yamada 佐藤|sato 鈴木|suzuki 高橋|takahashi 田中|tanaka 伊藤|ito 渡辺|watanabe "
        "山本|yamamoto 中村|nakamura 小林|kobayashi 加藤|kato 吉田|yoshida 山口|yamaguchi "
        "松本|matsumoto 井上|inoue 木村|kimura 林|hayashi 清水|shimizu 森|mori 池田|ikeda",
    ),
}

# Domains per pool: drawn at random (weights by repetition); uniqueness comes from the
# local part, so repeats are harmless here.
POOL_DOMAINS: dict[str, tuple[str, ...]] = {
    "en": ("gmail.com",) * 8
    + ("yahoo.com",) * 2
    + ("outlook.com", "hotmail.com", "icloud.com")
    + ("aol.com", "protonmail.com", "hotmail.co.uk", "live.com", "me.com"),
    "es": ("gmail.com",) * 6 + ("hotmail.es", "yahoo.es", "outlook.es", "telefonica.net"),
    "fr": ("gmail.com",) * 5 + ("orange.fr", "free.fr", "laposte.net", "hotmail.fr", "sfr.fr"),
    "de": ("gmail.com",) * 4 + ("web.de", "web.de", "gmx.de", "gmx.de", "t-online.de"),
    "nl": ("gmail.com",) * 5 + ("ziggo.nl", "kpnmail.nl", "hotmail.nl", "outlook.com"),
    "it": ("gmail.com",) * 5 + ("libero.it", "libero.it", "hotmail.it", "alice.it", "virgilio.it"),
    "pt": ("gmail.com",) * 6 + ("hotmail.com", "hotmail.com", "uol.com.br", "bol.com.br"),
    "in": ("gmail.com",) * 8 + ("yahoo.co.in", "rediffmail.com", "outlook.com"),
    "ja": ("gmail.com",) * 4 + ("yahoo.co.jp", "yahoo.co.jp", "docomo.ne.jp", "icloud.com"),
}

# Mistyped domains a few customers enter (still syntactically valid addresses).
TYPO_DOMAINS: dict[str, str] = {
    "gmail.com": "gmial.com",
    "hotmail.com": "hotmial.com",
    "yahoo.com": "yaho.com",
    "outlook.com": "outlok.com",
}


@dataclass(frozen=True, slots=True)
class Name:
    """One given or family name: how it is displayed and its ASCII form for e-mails."""

    display: str
    ascii: str


@dataclass(frozen=True, slots=True)
class NamePool:
    """The names of one language; ``first`` holds (name, gender) pairs."""

    key: str
    first: tuple[tuple[Name, str], ...]
    last: tuple[Name, ...]
    domains: tuple[str, ...]

    @property
    def pairs(self) -> int:
        """How many distinct (first, last) pairs the pool can form."""
        return len(self.first) * len(self.last)


def ascii_fold(text: str) -> str:
    """Lower-case ``a-z`` spelling of a Latin name: accents dropped, other characters removed."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if "a" <= ch <= "z")


def _parse(entry: str) -> Name:
    if "|" in entry:
        display, ascii_form = entry.split("|")
        return Name(display, ascii_form)
    return Name(entry, ascii_fold(entry))


def _split_last_names(text: str) -> list[str]:
    # Dutch family names carry lower-case particles ("de Jong", "van den Berg").
    names: list[str] = []
    particle: list[str] = []
    for token in text.split():
        if token in {"de", "van", "den", "der"}:
            particle.append(token)
            continue
        names.append(" ".join([*particle, token]))
        particle = []
    return names


def _unique(names: list[Name], taken: set[str]) -> list[Name]:
    kept = []
    for name in names:
        if name.ascii and name.ascii not in taken:
            taken.add(name.ascii)
            kept.append(name)
    return kept


def _build_pools() -> dict[str, NamePool]:
    taken_first: set[str] = set()
    pools = {}
    for key, (female, male, last) in _RAW_POOLS.items():
        firsts: list[tuple[Name, str]] = []
        for names, gender in ((female, "female"), (male, "male")):
            for name in _unique([_parse(e) for e in names.split()], taken_first):
                firsts.append((name, gender))
        lasts = _unique([_parse(e) for e in _split_last_names(last)], set())
        pools[key] = NamePool(key, tuple(firsts), tuple(lasts), POOL_DOMAINS[key])
    return pools


NAME_POOLS: dict[str, NamePool] = _build_pools()

# Any prime larger than every pool's pair count is coprime with it, so k -> a*k + b (mod N)
# is a permutation of the pairs.
_STRIDE = 1_000_003


def pick_pair(pool: NamePool, k: int, offset: int) -> tuple[int, int, int]:
    """The k-th customer of ``pool``: (first index, last index, round). Distinct k give
    distinct triples; ``offset`` (from the seed) varies who gets which name."""
    n = pool.pairs
    rank = (_STRIDE * k + offset) % n
    return rank % len(pool.first), rank // len(pool.first), k // n


def local_part(first: Name, last: Name, round_: int, separator: str) -> str:
    """``first.last`` (or ``first_last``) plus the round number when pairs ran out."""
    suffix = str(round_) if round_ else ""
    return f"{first.ascii}{separator}{last.ascii}{suffix}"
