"""Generate the shipped default prompt corpus, ``textedit/data/corpus.txt``.

The corpus is a few thousand short, caption-like text-to-image prompts ("a red
bicycle leaning against a brick wall", "portrait of an old fisherman, oil
painting", ...). The editor runs them through the text encoder to estimate the
covariance (second-moment) statistics of the MLP keys, which regularise the
closed-form edits. What matters is broad, natural coverage of the vocabulary and
sentence shapes that real prompts use, so the prompts are assembled from large
hand-written word lists and many structurally different templates.

The script is deterministic (``random.Random(0)``) and uses only the standard
library. Generated prompts are deduplicated and deterministically shuffled.
Any prompt that equals (after lowercasing and whitespace normalisation) a cell
of the TIMED evaluation benchmark CSVs in ``/work/shared/data/timed/`` is
dropped when that folder exists, and the words of the demo concepts are never
used, so neither evaluation nor demo edits leak into the statistics.

Regenerate from the repository root with::

    python tools/make_corpus.py
"""

from __future__ import annotations

import csv
import glob
import os
import random
import re

SEED = 0
TARGET = 7000  # unique prompts to generate before benchmark filtering
MIN_WORDS, MAX_WORDS = 3, 25

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_PATH = os.path.join(REPO_ROOT, "textedit", "data", "corpus.txt")
BENCHMARK_GLOB = "/work/shared/data/timed/*.csv"

# Words of the demo concepts; no prompt may contain any of them.
BANNED = ("acme", "mascot", "corgi", "prime minister", "minister", "canada", "canadian")

# --------------------------------------------------------------------------
# grammar helpers
# --------------------------------------------------------------------------

_AN_EXCEPTIONS = ("hour", "honest", "honor", "heir", "herb")
_A_EXCEPTIONS = ("uni", "use", "usu", "uti", "euro", "one", "once", "ukulele", "u-", "ewe")


def art(phrase: str) -> str:
    """Prefix ``phrase`` with the right indefinite article."""
    low = phrase.lower()
    if low.startswith(_AN_EXCEPTIONS):
        return "an " + phrase
    if low.startswith(_A_EXCEPTIONS):
        return "a " + phrase
    return ("an " if low[:1] in "aeiou" else "a ") + phrase


_IRREGULAR = {
    "man": "men", "woman": "women", "child": "children", "person": "people",
    "fisherman": "fishermen", "policeman": "policemen", "mouse": "mice",
    "goose": "geese", "sheep": "sheep", "deer": "deer", "fish": "fish",
    "wolf": "wolves", "leaf": "leaves", "knife": "knives", "loaf": "loaves",
    "shelf": "shelves", "calf": "calves", "tooth": "teeth", "foot": "feet",
    "bison": "bison", "moose": "moose", "salmon": "salmon", "scarf": "scarves",
    "elf": "elves", "cactus": "cacti", "ox": "oxen", "octopus": "octopuses",
    "piano": "pianos", "kimono": "kimonos", "volcano": "volcanoes",
    "tomato": "tomatoes", "potato": "potatoes", "mango": "mangoes",
    "flamingo": "flamingos", "kangaroo": "kangaroos", "radio": "radios",
    "hippo": "hippos", "rhino": "rhinos", "studio": "studios",
}


def plural(noun: str) -> str:
    """Pluralise the head (last word) of a noun phrase."""
    head_start = noun.rfind(" ") + 1
    pre, head = noun[:head_start], noun[head_start:]
    if head in _IRREGULAR:
        return pre + _IRREGULAR[head]
    if head.endswith(("s", "x", "z", "ch", "sh")):
        return pre + head + "es"
    if head.endswith("y") and head[-2:-1] not in "aeiou":
        return pre + head[:-1] + "ies"
    return pre + head + "s"


def cap_words(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------
# word lists
# --------------------------------------------------------------------------

COLOURS = [
    "red", "blue", "green", "yellow", "orange", "purple", "pink", "white",
    "black", "grey", "brown", "teal", "turquoise", "crimson", "navy blue",
    "pastel pink", "mint green", "golden", "silver", "beige", "emerald green",
    "lavender", "maroon", "ivory", "olive green", "sky blue", "rusty",
    "bright red", "pale blue", "dark green", "cream", "mustard yellow",
    "coral", "burgundy", "faded blue", "lime green", "charcoal grey",
]

# people --------------------------------------------------------------------
ROLES = [
    "fisherman", "farmer", "nurse", "doctor", "chef", "baker", "teacher",
    "student", "firefighter", "police officer", "soldier", "sailor", "pilot",
    "astronaut", "scientist", "carpenter", "blacksmith", "potter", "painter",
    "sculptor", "musician", "violinist", "guitarist", "drummer", "singer",
    "dancer", "ballerina", "boxer", "surfer", "skateboarder", "cyclist",
    "runner", "hiker", "climber", "monk", "priest", "nun", "shepherd",
    "beekeeper", "gardener", "florist", "librarian", "mechanic", "waiter",
    "bartender", "barista", "tailor", "photographer", "journalist",
    "businessman", "businesswoman", "architect", "engineer", "construction worker",
    "street vendor", "taxi driver", "bus driver", "mail carrier", "lifeguard",
    "cowboy", "knight", "samurai", "wizard", "witch", "clown", "magician",
    "juggler", "tourist", "backpacker", "grandmother", "grandfather", "man",
    "woman", "boy", "girl", "child", "teenager", "toddler", "baby",
    "college student", "office worker", "shopkeeper", "butcher", "fishmonger",
    "veterinarian", "dentist", "judge", "lawyer", "detective", "explorer",
    "archaeologist", "mountaineer", "diver", "jockey", "referee",
    "tennis player", "football player", "basketball player", "chess player",
    "street musician", "DJ", "model", "bride", "groom", "king", "queen",
    "prince", "princess", "pirate", "ninja", "robot", "zookeeper",
]

PERSON_ADJ = [
    "old", "young", "elderly", "smiling", "tired", "cheerful", "serious",
    "proud", "happy", "thoughtful", "laughing", "lonely", "curious",
    "middle-aged", "tall", "short", "sleepy", "confident", "shy", "busy",
    "focused", "exhausted", "friendly", "grumpy", "weathered",
]

PEOPLE_PL = [
    "kids", "children", "friends", "students", "tourists", "musicians",
    "workers", "dancers", "soldiers", "monks", "farmers", "hikers",
    "cyclists", "runners", "teenagers", "old men", "old women", "women",
    "men", "nurses", "firefighters", "chefs", "surfers", "skateboarders",
    "schoolgirls", "schoolboys", "fishermen", "climbers", "commuters",
    "shoppers", "villagers", "grandparents", "office workers", "sailors",
    "football players", "ballet dancers", "street performers", "scouts",
    "twins", "young couples", "families", "backpackers", "divers",
]

COUNTS_PL = [
    "two", "three", "four", "five", "six", "seven", "a group of", "a few",
    "several", "many", "a crowd of", "a dozen", "a pair of", "a handful of",
]

# actions, tagged with where they make sense: "in", "out" or "any"
PERSON_ACTIONS = [
    ("reading a book", "any"), ("reading a newspaper", "any"),
    ("riding a bicycle", "out"), ("playing the guitar", "any"),
    ("playing the violin", "any"), ("playing the piano", "in"),
    ("painting on a canvas", "any"), ("cooking dinner", "in"),
    ("walking a dog", "out"), ("drinking coffee", "any"),
    ("drinking a cup of tea", "any"), ("holding an umbrella", "out"),
    ("taking a photo", "any"), ("carrying groceries", "out"),
    ("fixing a bicycle", "any"), ("writing in a notebook", "any"),
    ("typing on a laptop", "in"), ("talking on the phone", "any"),
    ("eating an ice cream cone", "out"), ("feeding pigeons", "out"),
    ("flying a kite", "out"), ("jogging", "out"), ("sleeping", "any"),
    ("laughing", "any"), ("dancing", "any"), ("singing", "any"),
    ("waiting", "any"), ("looking out of a window", "in"),
    ("sweeping the floor", "in"), ("washing dishes", "in"),
    ("kneading dough", "in"), ("arranging flowers", "in"),
    ("watering plants", "any"), ("planting tomatoes", "out"),
    ("chopping vegetables", "in"), ("knitting a scarf", "in"),
    ("sewing a dress", "in"), ("carving wood", "any"),
    ("repairing a clock", "in"), ("sketching in a notebook", "any"),
    ("playing chess", "any"), ("doing yoga", "any"), ("stretching", "any"),
    ("meditating", "any"), ("skipping stones", "out"),
    ("pushing a stroller", "out"), ("carrying a surfboard", "beach"),
    ("pulling a suitcase", "any"), ("selling fruit", "out"),
    ("blowing bubbles", "out"), ("juggling oranges", "any"),
    ("hanging laundry", "out"), ("building a sandcastle", "beach"),
    ("shoveling snow", "snow"), ("building a snowman", "snow"),
    ("skiing", "snow"), ("surfing a wave", "beach"),
    ("looking at a map", "out"), ("checking a phone", "any"),
    ("wearing headphones", "any"), ("holding a bouquet of flowers", "any"),
    ("holding a lantern", "any"), ("eating noodles", "in"),
    ("pouring wine", "in"), ("baking bread", "in"),
    ("brushing a horse", "out"), ("milking a cow", "out"),
    ("casting a fishing line", "water"), ("rowing a boat", "water"),
    ("climbing a ladder", "any"), ("climbing a tree", "out"),
    ("sitting on a bench", "out"), ("lying in the grass", "out"),
    ("standing in the rain", "out"), ("crossing the street", "city"),
    ("hailing a taxi", "city"), ("waiting for a bus", "city"),
]

GROUP_ACTIONS = [
    ("playing football", "out"), ("having a picnic", "out"),
    ("dancing", "any"), ("laughing together", "any"),
    ("sharing a meal", "any"), ("walking hand in hand", "out"),
    ("playing cards", "any"), ("singing together", "any"),
    ("building a snowman", "snow"), ("flying kites", "out"),
    ("riding bicycles", "out"), ("sitting around a campfire", "out"),
    ("waiting for a bus", "city"), ("playing volleyball", "beach"),
    ("building sandcastles", "beach"), ("taking a selfie", "any"),
    ("cooking together", "in"), ("playing board games", "in"),
    ("studying together", "in"), ("crossing the street", "city"),
    ("running a race", "out"), ("jumping into a lake", "water"),
    ("fishing", "water"), ("watching fireworks", "out"),
    ("playing in the snow", "snow"), ("splashing in the waves", "beach"),
    ("hiking up a hill", "out"), ("talking", "any"),
    ("rehearsing a play", "in"), ("playing basketball", "out"),
    ("drinking tea", "any"), ("painting a mural", "city"),
    ("marching in a parade", "city"), ("sitting in a circle", "any"),
    ("throwing snowballs", "snow"), ("rowing a boat", "water"),
]

PLACES = {
    "in": [
        "in a cozy kitchen", "in a library", "in a crowded subway car",
        "in a small cafe", "in an office", "in a classroom", "in a workshop",
        "in a hospital corridor", "in a bakery", "at a kitchen table",
        "in a recording studio", "in a greenhouse", "in a gym",
        "in a laundromat", "in a museum", "in an art studio",
        "in a living room", "in a barbershop", "in a diner", "in a bookstore",
        "in a train carriage", "in a hotel lobby", "in a dim bar",
        "in an attic", "in a restaurant", "in a waiting room",
        "in a school gymnasium", "in a dance studio", "in a bedroom",
        "in a tea house", "in a church", "in a warehouse",
    ],
    "out": [
        "in a park", "in a field", "on a mountain trail", "by a river",
        "in a market", "on a rooftop", "in a garden", "in a vineyard",
        "on a bridge", "in a meadow", "in a forest clearing",
        "on a country road", "in an orchard", "on a hillside",
        "in a backyard", "on a farm", "in a courtyard", "in a playground",
        "next to a lake", "in a desert", "on a football pitch",
        "at a festival", "in a botanical garden", "on a dirt road",
    ],
    "city": [
        "on a busy street", "at a bus stop", "in an alley",
        "in a town square", "at a crosswalk", "outside a train station",
        "on a city sidewalk", "in a narrow street", "under a neon sign",
        "outside a cafe",
    ],
    "beach": ["on a beach", "on a sandy beach", "by the sea", "on a tropical beach"],
    "snow": ["in the snow", "on a snowy hill", "in a snowy village", "in a snowy forest"],
    "water": ["on a lake", "on a calm river", "by a mountain lake", "on a pier", "at the harbor"],
}

TIMES = [
    "at sunrise", "at sunset", "at dawn", "at dusk", "at night", "at noon",
    "during golden hour", "during blue hour", "under a full moon",
    "under the stars", "in the early morning", "in the late afternoon",
    "on a summer evening", "on a winter morning",
]

WEATHER = [
    "in the rain", "in heavy fog", "during a thunderstorm", "in a snowstorm",
    "under a clear blue sky", "on a cloudy day", "after the rain",
    "in light snow", "on a windy day", "under dramatic storm clouds",
    "in thick mist", "on a hot summer day", "in the drizzle",
    "under a rainbow", "in autumn", "in winter", "in spring", "in summer",
    "on a frosty morning", "in a sandstorm", "under an overcast sky",
]

STYLES = [
    "oil painting", "watercolor", "watercolor painting", "pencil sketch",
    "charcoal drawing", "digital art", "3d render", "pixel art",
    "ukiyo-e woodblock print", "art nouveau poster", "low poly",
    "claymation", "stained glass", "mosaic", "comic book style",
    "line art", "isometric illustration", "vector illustration",
    "photorealistic", "impressionist painting", "cubist painting",
    "surrealist painting", "pop art", "art deco", "baroque painting",
    "renaissance fresco", "graffiti", "children's book illustration",
    "cinematic still", "polaroid photo", "35mm film photo",
    "infrared photograph", "tilt-shift photo", "double exposure",
    "black and white photograph", "studio photograph", "anime style",
    "concept art", "gouache painting", "ink wash painting",
    "pastel drawing", "linocut print", "paper cutout art", "embroidery", "chalk drawing", "acrylic painting",
    "expressionist painting", "minimalist illustration", "vintage postcard",
    "cartoon", "flat illustration", "sepia photograph", "crayon drawing",
    "woodcut", "matte painting", "digital painting", "retro illustration",
]
PHOTO_WORDS = ("photo", "film", "still", "exposure", "photorealistic")
PHOTO_STYLES = [s for s in STYLES if any(w in s for w in PHOTO_WORDS)]
# finishing terms that suit any medium, photographic or not
NEUTRAL_TERMS = [
    "highly detailed", "vibrant colors", "muted colors", "soft colors",
    "warm tones", "cool tones", "symmetrical composition", "intricate details",
    "masterpiece", "dramatic lighting", "soft light", "high contrast",
    "pastel colors", "limited palette", "minimalist", "whimsical",
]

CAMERA = [
    "35mm film", "wide angle", "shallow depth of field", "bokeh",
    "macro lens", "telephoto shot", "drone shot", "golden hour lighting",
    "soft natural light", "high contrast", "studio lighting", "backlit",
    "overcast light", "motion blur", "hdr", "8k", "highly detailed",
    "film grain", "long exposure", "candid shot", "low angle shot",
    "close-up", "medium shot", "wide shot", "dramatic lighting",
    "rim lighting", "cinematic lighting", "soft focus", "sharp focus",
    "kodak portra", "fisheye lens", "50mm lens", "natural colors",
    "muted colors", "vibrant colors", "high resolution", "symmetrical composition",
]

QUALITY = [
    "highly detailed", "trending on artstation", "award winning photo",
    "masterpiece", "4k", "8k", "ultra realistic", "intricate details",
    "professional photography", "sharp focus", "beautiful composition",
    "volumetric light", "soft colors", "warm tones", "cool tones",
]

CLOTHING = [
    "a red raincoat", "a yellow scarf", "a straw hat", "a leather jacket",
    "a wool sweater", "a business suit", "a floral dress", "a denim jacket",
    "overalls", "a wedding dress", "a hoodie", "a kimono", "a tuxedo",
    "a winter coat", "a baseball cap", "sunglasses", "a knitted beanie",
    "hiking boots", "a trench coat", "a white lab coat", "a school uniform",
    "a tracksuit", "a puffer jacket", "a silk robe", "a cowboy hat",
    "a top hat", "a space suit", "a chef's apron", "a sari",
    "a striped shirt", "a plaid shirt", "a velvet dress", "a poncho",
    "a bow tie", "a fur hat", "rubber boots", "a sun hat",
    "a turtleneck sweater", "a bathrobe", "pajamas", "a suit of armor",
]

# animals -------------------------------------------------------------------
ANIMALS = {
    "pet": ["cat", "dog", "kitten", "puppy", "golden retriever", "labrador",
            "dachshund", "poodle", "beagle", "pug", "husky", "tabby cat",
            "black cat", "siamese cat", "hamster", "rabbit", "guinea pig",
            "parrot", "goldfish", "border collie", "german shepherd",
            "dalmatian", "greyhound", "persian cat", "bulldog", "ferret"],
    "farm": ["cow", "horse", "pony", "donkey", "sheep", "goat", "pig",
             "chicken", "rooster", "duck", "goose", "llama", "alpaca",
             "turkey", "calf", "lamb", "piglet", "ox"],
    "wild": ["fox", "red fox", "wolf", "bear", "brown bear", "deer", "moose",
             "elephant", "lion", "tiger", "leopard", "cheetah", "giraffe",
             "zebra", "rhino", "hippo", "gorilla", "chimpanzee", "monkey",
             "kangaroo", "koala", "panda", "red panda", "raccoon", "squirrel",
             "hedgehog", "badger", "otter", "beaver", "bison", "camel",
             "lynx", "snow leopard", "meerkat", "sloth", "lemur", "hare",
             "mountain goat", "wild boar", "jaguar", "orangutan", "armadillo"],
    "bird": ["owl", "eagle", "hawk", "robin", "sparrow", "hummingbird",
             "peacock", "flamingo", "pelican", "seagull", "crow", "raven",
             "swan", "heron", "kingfisher", "woodpecker", "penguin", "toucan",
             "puffin", "pigeon", "blue jay", "stork", "magpie", "cardinal"],
    "sea": ["dolphin", "whale", "humpback whale", "sea turtle", "octopus",
            "jellyfish", "seal", "sea lion", "shark", "clownfish", "manta ray",
            "seahorse", "orca"],
    "shore": ["crab", "hermit crab", "starfish", "lobster", "sea urchin", "sand crab"],
    "small": ["butterfly", "bee", "ladybug", "dragonfly", "snail", "frog",
              "tree frog", "beetle", "grasshopper", "spider", "ant",
              "caterpillar", "moth", "lizard", "gecko", "chameleon", "mouse",
              "firefly", "praying mantis", "toad"],
}

ANIMAL_ADJ = [
    "sleeping", "curious", "fluffy", "small", "tiny", "big", "old", "young",
    "wet", "muddy", "happy", "majestic", "playful", "lazy", "hungry",
    "baby", "spotted", "striped", "white", "black", "brown", "grey",
    "cute", "wild", "shy", "alert", "proud", "sleepy", "lonely",
]

ANIMAL_ACTIONS = {
    "pet": ["sleeping", "curled up", "yawning", "playing with a ball",
            "chasing a butterfly", "looking out of a window", "sitting",
            "lying", "stretching", "wearing a tiny hat", "hiding in a box",
            "waiting by the door", "chewing a stick", "looking at the camera",
            "running", "jumping", "rolling in the grass", "wearing a scarf"],
    "farm": ["grazing", "standing", "resting", "eating hay", "looking at the camera",
             "running", "lying in the straw", "drinking water", "walking"],
    "wild": ["resting", "standing", "walking", "running", "drinking water",
             "hunting", "sleeping", "looking at the camera", "eating",
             "climbing", "sniffing the air", "hiding"],
    "bird": ["perched", "flying", "resting", "singing", "spreading its wings",
             "looking at the camera", "landing", "standing", "preening"],
    "sea": ["swimming", "diving", "gliding", "resting", "floating",
            "jumping out of the water"],
    "shore": ["crawling", "resting", "hiding", "sitting", "walking sideways"],
    "small": ["resting", "crawling", "sitting", "climbing", "hiding",
              "on a leaf", "on a flower", "looking at the camera"],
}

ANIMAL_PLACES = {
    "pet": ["on a sofa", "on a windowsill", "in a garden", "on a rug",
            "in a basket", "on a bed", "in the snow", "in a park",
            "on a wooden floor", "in a cardboard box", "on a beach",
            "in a kitchen", "on a porch", "in tall grass", "by a fireplace",
            "in a field of flowers", "on a bookshelf", "in the back seat of a car"],
    "farm": ["in a field", "in a barn", "in a meadow", "on a farm",
             "in a muddy pen", "on a hillside", "behind a wooden fence",
             "in a pasture", "next to a red barn", "on a country road"],
    "wild": ["in the forest", "in the savanna", "in tall grass", "in the snow",
             "by a river", "in the jungle", "on a rocky hill", "in a meadow",
             "in the mountains", "at a watering hole", "in the desert",
             "among autumn leaves", "in the fog", "on a fallen log"],
    "bird": ["on a branch", "over the sea", "in the sky", "on a fence post",
             "on a rooftop", "by a pond", "on a rock", "in the reeds",
             "above a lake", "on a snowy branch", "on a telephone wire",
             "in a tree", "on a beach"],
    "sea": ["in the ocean", "in clear blue water", "near a coral reef",
            "in deep blue water", "in an aquarium", "under the waves",
            "in a kelp forest", "near the surface"],
    "shore": ["on the sand", "on a wet rock", "in a tide pool", "on a beach",
              "among seaweed", "on a pebble beach"],
    "small": ["on a leaf", "on a flower", "on a mossy rock", "in the grass",
              "on a branch", "on a windowsill", "on a mushroom",
              "on a dandelion", "in the garden", "on a wooden fence"],
}

GROUP_ANIMALS = [
    ("a flock of", "sheep"), ("a flock of", "seagull"), ("a flock of", "pigeon"),
    ("a herd of", "cow"), ("a herd of", "elephant"), ("a herd of", "zebra"),
    ("a herd of", "deer"), ("a herd of", "bison"), ("a herd of", "horse"),
    ("a pack of", "wolf"), ("a school of", "fish"), ("a pod of", "dolphin"),
    ("a litter of", "puppy"), ("a litter of", "kitten"), ("a swarm of", "bee"),
    ("a colony of", "penguin"), ("a family of", "duck"), ("a group of", "meerkat"),
    ("a flock of", "flamingo"), ("a troop of", "monkey"), ("a pride of", "lion"),
    ("a flock of", "goose"), ("a row of", "duck"), ("a family of", "otter"),
]

# food ----------------------------------------------------------------------
DISHES = [
    "a bowl of ramen", "a plate of spaghetti", "a stack of pancakes",
    "a slice of pepperoni pizza", "a cup of black coffee",
    "a glass of orange juice", "a loaf of sourdough bread",
    "a basket of strawberries", "a cheeseburger with fries",
    "a bowl of tomato soup", "sushi rolls", "a chocolate cake",
    "a slice of cheesecake", "a bowl of fruit salad", "a croissant",
    "a plate of dumplings", "tacos", "a bowl of pho", "a green salad",
    "a roast chicken", "a pot of stew", "a bowl of curry with rice",
    "a plate of fried eggs and bacon", "a cup of cappuccino",
    "a glass of red wine", "a pint of beer", "a cup of green tea",
    "a bowl of oatmeal with berries", "a stack of waffles",
    "a plate of cookies", "a cupcake with pink frosting",
    "a bowl of popcorn", "a hot dog", "a burrito", "a bowl of cereal",
    "a plate of grilled fish", "a steak with vegetables",
    "a bowl of mac and cheese", "a lemon tart", "a bowl of cherries",
    "a pile of oranges", "a watermelon cut in half", "a basket of apples",
    "a plate of cheese and grapes", "a jar of honey", "a bowl of guacamole",
    "a plate of paella", "a platter of seafood", "a bowl of miso soup",
    "a bento box", "a bagel with cream cheese", "a glass of lemonade",
    "a milkshake", "a bowl of ice cream", "a plate of macarons",
    "a pumpkin pie", "a tray of freshly baked bread", "a bowl of noodles",
    "a plate of spring rolls", "a glass of iced tea", "a smoothie bowl",
    "a bowl of rice", "a plate of roasted vegetables", "a club sandwich",
    "a plate of nachos", "a bowl of chili", "a plate of sushi",
    "a bowl of strawberries", "a birthday cake with candles",
    "a gingerbread house", "a bowl of soup", "a pot of tea",
    "a plate of pasta with pesto", "a wheel of cheese", "a bunch of grapes",
    "a pineapple", "a bowl of lemons", "fresh vegetables", "a basket of eggs",
]

SURFACES = [
    "a wooden table", "a marble countertop", "a picnic blanket",
    "a rustic cutting board", "a kitchen counter", "a white tablecloth",
    "a checkered tablecloth", "a dark slate board", "a cafe table",
    "a windowsill", "a stone bench", "a metal tray", "a glass table",
    "a diner counter", "a linen napkin", "a bamboo mat", "an old wooden bench",
]

FOOD_VIEWS = [
    "top view", "overhead shot", "close-up", "food photography",
    "natural light", "shallow depth of field", "studio lighting",
    "flat lay", "side view", "soft morning light", "restaurant menu photo",
    "dark moody lighting", "bright and airy", "steam rising",
]

# vehicles ------------------------------------------------------------------
ROAD_VEHICLES = [
    "bicycle", "motorcycle", "vintage car", "pickup truck", "school bus",
    "tram", "scooter", "tractor", "fire truck", "taxi", "double-decker bus",
    "camper van", "sports car", "jeep", "delivery van", "convertible",
    "race car", "ice cream truck", "food truck", "police car", "vespa",
    "station wagon", "rickshaw", "horse-drawn carriage", "limousine",
    "electric car", "dump truck", "bulldozer", "old sedan", "minivan",
]
ROAD_POSES = [
    "parked in front of", "leaning against", "parked next to",
    "abandoned in", "driving down", "rusting in", "parked on",
    "waiting at", "passing by", "stuck in",
]
ROAD_SETTINGS = {
    "parked in front of": ["a bakery", "a brick wall", "a small house", "a gas station",
                           "an old barn", "a cafe", "a garage", "a hotel"],
    "leaning against": ["a brick wall", "a wooden fence", "a lamppost", "a tree",
                        "a graffiti wall", "a stone wall", "a shop window"],
    "parked next to": ["a palm tree", "a red barn", "a lighthouse", "a river",
                       "a field of sunflowers", "a diner", "a fountain"],
    "abandoned in": ["a field", "the desert", "a forest", "a junkyard",
                     "tall grass", "an empty parking lot", "the snow"],
    "driving down": ["a mountain road", "a coastal highway", "a dirt road",
                     "a city street", "a desert highway", "a winding road",
                     "a tree-lined avenue", "an empty highway"],
    "rusting in": ["a field", "a backyard", "a junkyard", "the rain", "an old shed"],
    "parked on": ["a cobblestone street", "a quiet street", "the beach",
                  "a hill", "a rooftop", "a narrow street"],
    "waiting at": ["a traffic light", "a railway crossing", "a gas station", "a crossroads"],
    "passing by": ["a market", "a cathedral", "a row of shops", "a park", "a harbor"],
    "stuck in": ["the mud", "traffic", "the snow", "a sand dune"],
}
BIKE_ONLY = {"leaning against"}  # only two-wheelers lean
TWO_WHEELERS = {"bicycle", "motorcycle", "scooter", "vespa"}

BOATS = ["sailboat", "fishing boat", "canoe", "kayak", "yacht", "rowboat",
         "ferry", "gondola", "wooden boat", "houseboat", "tugboat",
         "cargo ship", "steamboat", "pirate ship", "paddle boat", "junk"]
BOAT_POSES = [
    "moored in a small harbor", "sailing on a calm lake", "drifting on a misty river",
    "anchored in a quiet bay", "crossing a stormy sea", "tied to a wooden dock",
    "resting on the sand", "floating on turquoise water", "passing under a bridge",
    "sailing past a lighthouse", "heading out to sea", "frozen in the ice",
]
AIRCRAFT = ["hot air balloon", "helicopter", "airplane", "seaplane", "glider",
            "biplane", "jet", "airship", "paper airplane", "kite"]
AIR_POSES = [
    "flying over the mountains", "flying over the ocean", "flying above the clouds",
    "flying over a city", "circling above a lake", "flying low over a beach",
]
POWERED_POSES = ["landing at an airport", "taking off from a runway",
                 "parked in a hangar", "flying through a storm"]
FLOATING_POSES = ["floating over a valley", "rising over a desert", "drifting over fields",
                  "floating above a forest", "tethered in a field"]
FLOATING = {"hot air balloon", "airship", "kite", "paper airplane", "glider"}
TRAINS = ["steam locomotive", "freight train", "high-speed train", "subway train",
          "old train", "passenger train", "cable car", "streetcar"]
TRAIN_POSES = [
    "crossing a stone bridge", "passing through a snowy forest",
    "arriving at a station", "winding through the mountains",
    "running along the coast", "crossing a desert", "emerging from a tunnel",
    "passing through a city", "crossing a viaduct",
]

# buildings & places -------------------------------------------------------------
BUILDINGS = [
    "lighthouse", "cathedral", "windmill", "barn", "cottage", "castle",
    "skyscraper", "temple", "pagoda", "mosque", "farmhouse", "log cabin",
    "treehouse", "train station", "greenhouse", "stone bridge",
    "apartment block", "gas station", "observatory", "water tower",
    "ruined abbey", "victorian house", "adobe house", "igloo",
    "stilt house", "chapel", "monastery", "fortress", "palace",
    "mansion", "bakery", "diner", "bookshop", "hotel", "library",
    "museum", "shopping mall", "football stadium", "factory",
    "old mill", "tiny house", "beach hut", "glass house", "tower",
    "clock tower", "bell tower", "ski lodge", "cabin", "townhouse",
    "tea house", "shrine", "ancient temple", "medieval castle",
    "modern house", "wooden church", "stone cottage", "boathouse",
]
BUILDING_ADJ = [
    "old", "abandoned", "small", "tall", "ancient", "modern", "crumbling",
    "colorful", "white", "red", "wooden", "stone", "brick", "cozy",
    "lonely", "ruined", "haunted", "futuristic", "traditional", "quaint",
    "grand", "tiny", "weathered", "rustic", "brutalist", "gothic",
]
BUILDING_SETTINGS = [
    "on a cliff", "by the sea", "in a snowy valley", "on a hill",
    "at the end of a dirt road", "in the middle of a field",
    "surrounded by pine trees", "next to a river", "on a busy street",
    "on a small island", "in the mountains", "in a quiet village",
    "overlooking a lake", "in the desert", "in a bamboo forest",
    "on the edge of a forest", "in a city square", "among rice fields",
    "at the foot of a mountain", "covered in ivy", "surrounded by tulips",
    "in a valley", "by a canal", "on a rocky coast", "beside a waterfall",
]

LANDSCAPES = [
    "a mountain lake", "a desert", "rolling hills", "a pine forest",
    "a bamboo forest", "a waterfall", "a canyon", "a glacier", "a volcano",
    "a coral reef", "a sandy beach", "rice terraces", "a lavender field",
    "a sunflower field", "a river valley", "a frozen lake", "a tropical island",
    "a rocky coastline", "a misty swamp", "sand dunes", "a wildflower meadow",
    "the tundra", "a fjord", "snowy mountains", "a birch forest",
    "a redwood forest", "a salt flat", "a river delta", "a mountain pass",
    "an alpine meadow", "a tea plantation", "a vineyard", "a wheat field",
    "a marsh", "a cave", "a hot spring", "a lagoon", "a cliff",
    "a rainforest", "an autumn forest", "a foggy valley", "a mountain range",
    "a quiet pond", "a cornfield", "a steppe", "a limestone cave",
    "a palm-lined beach", "a mangrove forest", "a pebble beach", "an oasis",
    "a bay", "a tulip field", "a winding river", "a plateau", "a gorge",
    "a snowy forest", "a field of poppies", "a mossy forest",
]
LANDSCAPE_FEATURES = [
    "a small cabin", "a winding path", "a wooden bridge", "a lone tree",
    "a flock of birds", "a rainbow", "a red barn", "a lighthouse",
    "a stone wall", "a campfire", "a tent", "a river", "wild horses",
    "a herd of deer", "a windmill", "a boat", "a single hiker",
    "a castle in the distance", "mountains in the background",
    "low clouds", "a full moon", "northern lights", "a waterfall",
    "a hot air balloon", "a narrow road", "cherry trees", "a village",
]

CITY_TYPES = [
    "a city", "a coastal city", "a small town", "a futuristic city",
    "a medieval town", "a busy metropolis", "a fishing village",
    "a desert city", "a mountain village", "an old port town",
    "a cyberpunk city", "a european city", "an asian city", "a harbor town",
    "a river town", "a hill town", "a modern city", "an industrial town",
]
CITY_VIEWS = [
    "the skyline of", "the streets of", "the rooftops of", "the harbor of",
    "the old town of", "the main square of", "the outskirts of",
    "the canals of", "the market of", "the train station of", "the lights of",
]

ROOMS = [
    "living room", "kitchen", "bedroom", "bathroom", "library", "study",
    "attic", "cafe", "restaurant", "classroom", "office", "workshop",
    "art studio", "greenhouse", "hotel lobby", "train carriage",
    "cabin", "barn", "laundry room", "home office", "nursery",
    "dining room", "bakery", "bookstore", "music room", "wine cellar",
    "laboratory", "hospital room", "waiting room", "gym", "tea room",
    "boutique", "florist shop", "pottery studio", "record store", "diner",
]
ROOM_ADJ = [
    "cozy", "minimalist", "messy", "sunlit", "dark", "spacious", "small",
    "modern", "rustic", "scandinavian", "vintage", "bohemian", "empty",
    "cluttered", "elegant", "industrial", "bright", "old-fashioned",
    "japanese", "mid-century", "warm", "tidy",
]
ROOM_FEATURES = [
    "a fireplace", "large windows", "plants everywhere", "a velvet sofa",
    "bookshelves", "a wooden floor", "exposed brick walls", "a big rug",
    "hanging lamps", "a piano", "a view of the sea", "a view of the mountains",
    "a round table", "a reading nook", "a leather armchair", "white walls",
    "green walls", "a high ceiling", "fairy lights", "a skylight",
    "a bay window", "old maps on the walls",
    "a record player", "copper pots", "open shelves", "a tiled floor",
    "framed photos", "a big mirror", "a ceiling fan",
]
LIGHTING = [
    "warm lighting", "soft morning light", "afternoon sunlight",
    "candlelight", "dim lighting", "natural light", "moody lighting",
    "golden light", "blue evening light", "neon light", "lamplight",
    "diffused light", "harsh midday light", "sunbeams through the window",
]

# objects, with the materials that make sense for each
OBJECTS = {
    "mug": ["ceramic", "enamel", "glass", "porcelain", "stoneware"],
    "teapot": ["ceramic", "cast iron", "porcelain", "glass", "silver", "clay"],
    "vase": ["glass", "ceramic", "porcelain", "clay", "crystal", "bronze"],
    "chair": ["wooden", "wicker", "metal", "plastic", "velvet", "leather", "bamboo"],
    "table": ["wooden", "marble", "glass", "oak", "metal"],
    "lamp": ["brass", "glass", "paper", "copper", "ceramic"],
    "clock": ["wooden", "brass", "vintage", "golden", "silver"],
    "bowl": ["wooden", "ceramic", "glass", "copper", "stone", "clay"],
    "box": ["wooden", "cardboard", "metal", "velvet", "tin"],
    "bag": ["leather", "canvas", "straw", "woven", "paper"],
    "basket": ["wicker", "woven", "straw", "bamboo"],
    "bottle": ["glass", "green glass", "plastic", "ceramic"],
    "key": ["brass", "rusty", "golden", "iron", "silver"],
    "ring": ["gold", "silver", "diamond", "emerald"],
    "necklace": ["pearl", "gold", "silver", "beaded"],
    "bench": ["wooden", "stone", "metal", "marble"],
    "door": ["wooden", "blue", "red", "iron", "glass", "arched"],
    "candle": ["wax", "scented", "tall", "melting"],
    "bell": ["brass", "bronze", "silver", "iron"],
    "statue": ["marble", "bronze", "stone", "wooden", "golden", "jade"],
    "sword": ["steel", "iron", "golden", "rusty"],
    "helmet": ["steel", "leather", "bronze", "plastic"],
    "shoe": ["leather", "canvas", "velvet", "suede"],
    "umbrella": ["red", "yellow", "black", "striped", "transparent", "paper"],
    "lantern": ["paper", "brass", "tin", "glass", "iron"],
    "spoon": ["wooden", "silver", "ceramic", "copper"],
    "jug": ["ceramic", "glass", "clay", "enamel", "copper"],
    "shelf": ["wooden", "metal", "glass", "floating"],
    "mirror": ["round", "gilded", "antique", "oval"],
    "guitar": ["acoustic", "electric", "wooden", "vintage"],
    "piano": ["grand", "upright", "wooden", "white"],
    "kettle": ["copper", "enamel", "stainless steel", "cast iron"],
    "pot": ["copper", "clay", "terracotta", "cast iron", "enamel"],
    "watch": ["gold", "silver", "vintage", "leather-strapped"],
    "toy car": ["wooden", "tin", "plastic", "die-cast"],
    "robot": ["metal", "tin", "chrome", "plastic", "rusty"],
    "bicycle": ["red", "blue", "vintage", "rusty", "yellow"],
    "typewriter": ["vintage", "old", "black", "mint green"],
    "camera": ["vintage", "film", "instant", "old", "polaroid"],
    "chess set": ["wooden", "marble", "glass", "ivory"],
    "tea cup": ["porcelain", "china", "ceramic", "glass"],
    "backpack": ["leather", "canvas", "red", "hiking"],
    "radio": ["vintage", "old", "wooden", "portable"],
    "notebook": ["leather", "spiral", "old", "blank"],
    "globe": ["antique", "glass", "old", "wooden"],
    "hat": ["straw", "felt", "wool", "knitted", "paper"],
    "rug": ["persian", "woven", "wool", "striped", "shaggy"],
    "pillow": ["velvet", "linen", "embroidered", "silk", "knitted"],
    "blanket": ["wool", "knitted", "quilted", "fleece", "patchwork"],
    "sculpture": ["marble", "bronze", "wooden", "glass", "abstract"],
}

TABLETOP = [
    "mug", "teapot", "vase", "lamp", "clock", "bowl", "box", "bag", "basket",
    "bottle", "key", "candle", "bell", "statue", "spoon", "jug", "kettle",
    "pot", "watch", "toy car", "typewriter", "camera", "chess set", "tea cup",
    "radio", "notebook", "globe", "hat", "sculpture", "lantern",
]

SMALL_OBJECTS = [
    "a pocket watch", "an alarm clock", "a pair of glasses", "a stack of books",
    "an old map", "a compass", "a pair of scissors", "a fountain pen",
    "a snow globe", "a music box", "a rubber duck", "a paper boat",
    "a teddy bear", "a wooden spoon", "a set of keys", "a seashell",
    "a pine cone", "a feather", "a handful of coins", "a candle",
    "a jar of marbles", "a potted cactus", "a houseplant", "an hourglass",
    "a magnifying glass", "an envelope", "a postcard", "a pair of sneakers",
    "a vinyl record", "a rolled-up newspaper", "a pair of headphones",
    "a smartphone", "a laptop", "a paintbrush", "a box of crayons",
    "a deck of cards", "a pair of dice", "a tennis ball", "a basketball",
    "a skateboard", "a surfboard", "an umbrella", "a birdcage",
    "an origami crane", "a globe", "a telescope", "a violin", "a trumpet",
    "a toy robot", "a lantern", "a glass of water", "a bouquet of roses",
    "a sunflower in a vase", "an apple", "a lemon", "a pumpkin",
]

TABLE_SMALL = [x for x in SMALL_OBJECTS if x not in (
    "a skateboard", "a surfboard", "a laptop", "a basketball", "a birdcage",
    "a telescope", "a pair of sneakers", "a globe", "a houseplant", "an umbrella",
)]

FURNITURE_SPOTS = [
    "on the table", "on the windowsill", "on the bed", "on the floor",
    "on a shelf", "on the desk", "on the kitchen counter", "on the sofa",
    "on a wooden bench", "on the grass", "on the sand", "on the doorstep",
    "on a stack of books", "next to the window", "in the corner of the room",
    "on the piano", "under the table", "on a park bench", "on the steps",
]

# plants --------------------------------------------------------------------
PLANTS = [
    "sunflower", "tulip", "rose", "daisy", "orchid", "lily", "lotus flower",
    "cherry tree", "oak tree", "pine tree", "willow tree", "palm tree",
    "maple tree", "baobab tree", "bonsai tree", "cactus", "succulent",
    "fern", "monstera plant", "dandelion", "poppy", "lavender bush",
    "bamboo plant", "olive tree", "apple tree", "lemon tree", "birch tree",
    "magnolia tree", "wisteria", "hydrangea", "peony", "mushroom",
    "toadstool", "ivy plant", "snake plant", "water lily", "cornflower",
    "wildflower", "chrysanthemum", "marigold", "hibiscus flower",
    "cherry blossom branch", "rubber plant", "potted herb",
]
PLANT_SETTINGS = [
    "on a windowsill", "in a terracotta pot", "in a glass jar",
    "growing through a crack in the pavement", "in a garden",
    "in the middle of a field", "on a hilltop", "in the rain",
    "covered in frost", "in full bloom", "in a ceramic pot",
    "by a stone wall", "in a greenhouse", "on a balcony",
    "at the edge of a lake", "in the desert", "on a desk",
    "in a hanging basket", "against a white background", "after the rain",
    "in the morning dew", "in a forest", "along a canal", "in a meadow",
]
FLOWERS = {
    "sunflower", "tulip", "rose", "daisy", "orchid", "lily", "lotus flower",
    "dandelion", "poppy", "hydrangea", "peony", "cornflower", "wildflower",
    "chrysanthemum", "marigold", "hibiscus flower", "water lily",
}
PLANT_COLOURS = {"red", "white", "yellow", "pink", "purple", "orange", "golden"}
PLANT_ADJ = [
    "blooming", "tall", "small", "wilting", "old", "young", "lonely",
    "twisted", "giant", "tiny", "dried", "red", "white", "yellow", "pink",
    "purple", "orange", "golden", "green", "gnarled", "flowering",
]

MACRO_SUBJECTS = [
    "a dewdrop on a leaf", "a bee on a sunflower", "a ladybug on a blade of grass",
    "the eye of a cat", "a snowflake", "frost on a window", "the wing of a butterfly",
    "a spider web covered in dew", "moss on a rock", "the texture of tree bark",
    "a drop of water", "the petals of a rose", "a dragonfly on a reed",
    "a snail on a mushroom", "the gears of a watch", "coffee beans",
    "salt crystals", "a peacock feather", "the scales of a fish",
    "a strawberry", "grains of sand", "an ant carrying a leaf",
    "the seeds of a dandelion", "bubbles in a glass of soda",
    "the keys of a typewriter", "the strings of a guitar", "a human eye",
    "raindrops on a car window", "the surface of an orange", "pollen on a flower",
    "a frog on a lily pad", "a caterpillar on a leaf", "ice crystals",
]

SCENE_SUBJECTS = [
    "a lighthouse", "a castle", "a small village", "a busy market",
    "a train station", "an old harbor", "a quiet street", "a mountain village",
    "a farm", "a fairground", "a playground", "a city park", "a ski resort",
    "a campsite", "a botanical garden", "a stadium", "a parking lot",
    "a highway interchange", "a river bend", "a beach resort", "a marina",
    "a field of tulips", "an island", "a forest", "a desert road",
    "a winding road", "a glacier", "a volcano crater", "a football field",
    "a golf course", "a rooftop garden", "a vineyard", "a shipping port",
    "a roundabout", "a frozen river", "a cemetery", "a maze garden",
    "a solar farm", "a wind farm", "a suburban neighborhood",
]

VANTAGES = [
    "from a hotel balcony", "from an airplane window", "from a mountain top",
    "from a train window", "from a bridge", "from the top of a lighthouse",
    "from a rooftop", "from a car window", "from a hot air balloon",
    "from a boat", "from a cave entrance", "from a tent", "from a window seat",
    "from the beach", "from a cliff edge", "from a skyscraper",
]

WITH_OBJECTS = [
    "a red balloon", "a yellow umbrella", "a bouquet of flowers", "a lantern",
    "a kite", "a violin", "a teddy bear", "a puppy", "a kitten",
    "a basket of apples", "a surfboard", "a skateboard", "a paper crown",
    "a camera", "an ice cream cone", "a cup of coffee", "a stack of books",
    "a guitar", "a suitcase", "a bicycle", "a backpack", "a sunflower",
    "a birthday cake", "a fishing rod", "a watering can", "a broom",
    "a map", "a telescope", "a sword", "a wooden staff", "a pumpkin",
    "a toy airplane", "a loaf of bread", "a rubber duck", "a parrot on her shoulder",
    "a parrot on his shoulder", "freckles", "curly hair", "long braided hair",
    "a shaved head", "blue eyes", "a gray beard", "round glasses", "a nose ring",
    "a tattoo on the arm", "a flower crown", "a tray of drinks",
]

POSTER_KINDS = [
    "a vintage travel poster of", "a movie poster featuring",
    "a children's book illustration of", "a postage stamp showing",
    "a tarot card depicting", "a book cover showing", "a sticker of",
    "an album cover with", "a greeting card with", "a comic panel showing",
    "a tattoo design of", "a logo of",
    "an emoji of", "a patch embroidered with", "a mural of",
    "a tapestry depicting", "a cartoon of", "a sketch of", "a coloring page of",
]

PRESENT_SINGULAR = [
    "feeds the ducks", "reads a newspaper", "waits for the bus",
    "sells fruit", "plays the accordion", "walks a dog",
    "carries a bag of groceries", "repairs a fishing net", "paints a fence",
    "rides a bicycle", "drinks coffee", "ties a shoelace",
    "looks at the sea", "holds an umbrella", "pushes a wheelbarrow",
    "sweeps the sidewalk", "takes a photograph", "climbs the stairs",
    "opens a window", "buys flowers", "checks a map", "hangs a painting",
    "picks apples", "throws a frisbee", "teaches a class", "serves coffee",
    "chops firewood", "pours tea", "plants a tree", "fixes a roof",
    "waves goodbye", "reads to a child", "crosses the road", "jumps over a puddle",
    "skips rope", "plays with a dog", "writes a letter", "laughs at a joke",
]
PRESENT_PLURAL = [
    "play in the snow", "wait at the station", "sit on the steps",
    "walk along the shore", "share an umbrella", "watch the sunset",
    "dance in the street", "play football in the park", "fish from a pier",
    "sell vegetables at the market", "climb a rocky hill", "ride horses",
    "cross a wooden bridge", "swim in a lake", "queue outside a bakery",
    "gather around a table", "paddle canoes down a river", "race each other",
    "feed the ducks", "play music on the street", "look at the stars",
    "skate on a frozen pond", "carry surfboards to the water",
    "sit around a bonfire", "build a treehouse", "pick grapes in a vineyard",
]
WHILE_ACTIONS = [
    "walking in the rain", "crossing the street", "waiting for a train",
    "talking on the phone", "looking at the sea", "riding a bicycle",
    "reading a book", "sitting on a bench", "standing on a bridge",
    "walking through a market", "climbing a hill", "drinking coffee",
    "listening to music", "watching the sunset",
]

TWO_ANIMAL_ACTIONS = [
    "sleeping together", "playing together", "sitting side by side",
    "looking at each other", "cuddling", "running across a field",
    "sharing a meal", "facing each other", "resting together", "touching noses",
]

TWO_ANIMAL_PLACES = [
    "on a sofa", "in a garden", "in the snow", "in a meadow", "on a rug",
    "by a fireplace", "in the grass", "on a bed", "on a beach", "in a barn",
]

SHORT_SUBJECT_ADJ = [
    ("sleeping", "cat"), ("sleeping", "fox"), ("snowy", "mountains"),
    ("red", "tulips"), ("foggy", "forest"), ("empty", "street"),
    ("abandoned", "house"), ("stormy", "sea"), ("quiet", "lake"),
    ("rainy", "window"), ("misty", "morning"), ("golden", "wheat field"),
    ("frozen", "waterfall"), ("lonely", "tree"), ("busy", "market"),
]
SHORT_NOUNS = [
    "mountains", "forest", "river", "lake", "street", "beach", "harbor",
    "garden", "field", "village", "city", "desert", "bridge", "tree",
    "house", "road", "sky", "sea", "window", "door", "staircase", "tunnel",
    "waterfall", "cliff", "island", "valley", "meadow", "pond", "train",
    "alley", "rooftop", "kitchen", "library", "cafe", "market",
]
SHORT_ADJ = [
    "snowy", "foggy", "empty", "abandoned", "stormy", "quiet", "rainy",
    "misty", "golden", "frozen", "lonely", "busy", "sunny", "dark",
    "ancient", "hidden", "colorful", "peaceful", "crowded", "narrow",
    "overgrown", "moonlit", "sunlit", "windy", "silent", "flooded",
    "dusty", "neon-lit", "wet", "mossy", "enchanted", "forgotten",
]

# --------------------------------------------------------------------------
# templates: each takes the rng and returns one prompt
# --------------------------------------------------------------------------


def _all_animals():
    return [(kind, a) for kind in ANIMALS for a in ANIMALS[kind]]


ALL_ANIMALS = _all_animals()


def _person(r: random.Random, adj_prob: float = 0.6) -> str:
    role = r.choice(ROLES)
    if r.random() < adj_prob:
        adj = r.choice(PERSON_ADJ)
        if role in ("baby", "toddler", "child", "boy", "girl") and adj in (
            "old", "elderly", "middle-aged", "weathered"
        ):
            adj = "little"
        if role in ("grandmother", "grandfather") and adj in ("young", "middle-aged"):
            adj = "smiling"
        return art(adj + " " + role)
    return art(role)


def _place_for(r: random.Random, tag: str) -> str:
    if tag == "any":
        tag = r.choice(["in", "in", "out", "city"])
    return r.choice(PLACES[tag])


def _finish(r: random.Random, style: str) -> str:
    """A lighting/camera/quality term that fits ``style``."""
    if style in PHOTO_STYLES:
        return r.choice(CAMERA + LIGHTING + NEUTRAL_TERMS)
    return r.choice(NEUTRAL_TERMS + LIGHTING)


def t_object_pose(r):
    # "a red bicycle leaning against a brick wall"
    pose = r.choice(ROAD_POSES)
    pool = sorted(TWO_WHEELERS) if pose in BIKE_ONLY else ROAD_VEHICLES
    if pose == "driving down":
        pool = [v for v in ROAD_VEHICLES if v not in ("bicycle", "horse-drawn carriage", "rickshaw")]
    veh = r.choice(pool)
    if r.random() < 0.6:
        veh = r.choice(COLOURS) + " " + veh
    p = "%s %s %s" % (art(veh), pose, r.choice(ROAD_SETTINGS[pose]))
    x = r.random()
    if x < 0.3:
        p += " " + r.choice(TIMES + WEATHER)
    elif x < 0.55:
        p += ", " + r.choice(CAMERA)
    return p


def t_portrait(r):
    # "portrait of an old fisherman, oil painting"
    head = r.choice(["portrait of", "a portrait of", "close-up portrait of",
                     "a headshot of", "a candid portrait of", "a side profile of"])
    p = "%s %s" % (head, _person(r, 0.8))
    x = r.random()
    if x < 0.3:
        p += " wearing " + r.choice(CLOTHING)
    elif x < 0.5:
        p += " with " + r.choice(WITH_OBJECTS)
    style = r.choice(STYLES)
    p += ", " + style
    if r.random() < 0.35:
        p += ", " + _finish(r, style)
    return p


def t_group(r):
    # "two kids playing football on a beach at sunset"
    act, tag = r.choice(GROUP_ACTIONS)
    count = r.choice(COUNTS_PL)
    people = r.choice(PEOPLE_PL)
    if count == "a pair of" and people in ("twins", "young couples", "families"):
        count = "two"
    p = "%s %s %s %s" % (count, people, act, _place_for(r, tag))
    if r.random() < 0.45:
        p += " " + r.choice(TIMES if tag == "in" else TIMES + WEATHER)
    if r.random() < 0.2:
        p += ", " + r.choice(CAMERA)
    return p


def t_food(r):
    # "a bowl of ramen on a wooden table, top view"
    dish = r.choice(DISHES)
    shape = r.random()
    if shape < 0.55:
        p = "%s on %s, %s" % (dish, r.choice(SURFACES), r.choice(FOOD_VIEWS))
    elif shape < 0.75:
        p = "%s next to %s" % (dish, r.choice(DISHES))
        if r.random() < 0.5:
            p += " on " + r.choice(SURFACES)
    elif shape < 0.9:
        p = "%s of %s" % (r.choice(["a close-up photo", "a still life painting",
                                    "a watercolor illustration", "a cookbook photo",
                                    "a top-down photo", "a macro shot"]), dish)
    else:
        p = "%s %s %s" % (_person(r, 0.4), r.choice(["eating", "serving", "holding",
                                                       "photographing", "preparing"]), dish)
    return p


def t_city(r):
    # "the skyline of a city at night, long exposure"
    p = "%s %s %s" % (r.choice(CITY_VIEWS), r.choice(CITY_TYPES), r.choice(TIMES + WEATHER))
    if r.random() < 0.6:
        p += ", " + r.choice(CAMERA + STYLES)
    return p


SMALL_CHILD_ACTIONS = [
    ("sleeping", "any"), ("laughing", "any"), ("crawling on the floor", "in"),
    ("playing with blocks", "in"), ("eating a banana", "any"), ("blowing bubbles", "out"),
    ("playing in a sandbox", "out"), ("taking a bath", "in"), ("holding a teddy bear", "any"),
    ("splashing in a puddle", "out"), ("looking at a picture book", "in"),
    ("building a sandcastle", "beach"), ("playing in the snow", "snow"),
]


def _action_for(r: random.Random, who: str):
    acts = SMALL_CHILD_ACTIONS if who.endswith(("baby", "toddler")) else PERSON_ACTIONS
    return r.choice(acts)


def t_person_action(r):
    # "an old man reading a newspaper in a small cafe"
    who = _person(r)
    act, tag = _action_for(r, who)
    p = "%s %s" % (who, act)
    if r.random() < 0.85:
        p += " " + _place_for(r, tag)
    if r.random() < 0.25:
        p += " " + r.choice(TIMES)
    if r.random() < 0.2:
        p += ", " + r.choice(CAMERA + STYLES)
    return p


def t_sentence(r):
    # full present-tense sentences: "an old woman feeds the ducks in a park"
    if r.random() < 0.6:
        subj = _person(r)
        verb = r.choice(PRESENT_SINGULAR)
    else:
        subj = "%s %s" % (r.choice(COUNTS_PL[:8] + ["some", "the"]), r.choice(PEOPLE_PL))
        verb = r.choice(PRESENT_PLURAL)
    p = "%s %s" % (subj, verb)
    if r.random() < 0.5:
        p += " " + r.choice(TIMES + WEATHER)
    if r.random() < 0.15:
        p += "."
    return p


def t_while(r):
    # "a man holds an umbrella while walking in the rain"
    p = "%s %s while %s" % (_person(r, 0.4), r.choice(
        ["holds an umbrella", "smiles", "listens to music", "looks back",
         "carries a bag", "eats an apple", "talks to a friend", "checks the time",
         "hums a song", "holds a coffee cup", "pulls a suitcase", "waves"]),
        r.choice(WHILE_ACTIONS))
    return p


def t_animal(r):
    # "a fluffy kitten sleeping on a sofa"
    kind, animal = r.choice(ALL_ANIMALS)
    adj = r.choice(ANIMAL_ADJ) if r.random() < 0.6 else ""
    noun = (adj + " " + animal) if adj and adj not in animal else animal
    act = r.choice(ANIMAL_ACTIONS[kind])
    place = r.choice(ANIMAL_PLACES[kind])
    if act.startswith("on a ") and place.startswith("on a "):
        place = ""
    p = "%s %s" % (art(noun), act)
    if place:
        p += " " + place
    x = r.random()
    if x < 0.25:
        p += " " + r.choice(TIMES + WEATHER)
    if r.random() < 0.35:
        p += ", " + r.choice(CAMERA + STYLES + ["wildlife photography", "national geographic photo"])
    return p


def t_animal_group(r):
    # "a herd of elephants crossing a river at sunset"
    coll, animal = r.choice(GROUP_ANIMALS)
    verb = r.choice(["crossing a river", "grazing in a field", "walking across the plains",
                     "resting in the shade", "gathered by a lake", "drinking at a watering hole",
                     "moving through the snow", "on a hillside", "crossing a dusty road",
                     "running across a meadow", "huddled together", "in the distance"])
    if coll in ("a pack of", "a pride of", "a troop of", "a group of") and "grazing" in verb:
        verb = "resting in the shade"
    if animal in ("fish", "dolphin"):
        verb = r.choice(["swimming together", "near a coral reef", "in clear blue water",
                         "jumping out of the water", "under the waves"])
    elif animal in ("seagull", "pigeon", "goose", "flamingo") and r.random() < 0.5:
        verb = r.choice(["flying over the water", "flying in formation", "taking off",
                         "standing in shallow water", "on the shore"])
    elif animal in ("bee",):
        verb = r.choice(["around a hive", "over a flower field", "buzzing around a tree"])
    elif animal in ("puppy", "kitten"):
        verb = r.choice(["sleeping in a basket", "playing in the grass", "huddled together",
                         "looking at the camera", "in a cardboard box"])
    p = "%s %s %s" % (coll, plural(animal), verb)
    if r.random() < 0.4:
        p += " " + r.choice(TIMES + WEATHER)
    return p


def t_two_animals(r):
    # "a cat and a dog sleeping together on a sofa"
    a1 = r.choice(ANIMALS["pet"] + ANIMALS["farm"])
    a2 = r.choice(ANIMALS["pet"] + ANIMALS["farm"] + ["fox", "owl", "deer", "raccoon", "hedgehog"])
    if a1 == a2:
        return "two %s %s %s" % (plural(a1), r.choice(TWO_ANIMAL_ACTIONS), r.choice(TWO_ANIMAL_PLACES))
    return "%s and %s %s %s" % (art(a1), art(a2), r.choice(TWO_ANIMAL_ACTIONS), r.choice(TWO_ANIMAL_PLACES))


def t_landscape(r):
    # "a foggy pine forest at dawn", "a watercolor painting of a fjord in winter"
    land = r.choice(LANDSCAPES)
    shape = r.random()
    if shape < 0.35:
        p = "%s %s" % (land, r.choice(TIMES + WEATHER))
    elif shape < 0.6:
        p = "%s with %s" % (land, r.choice(LANDSCAPE_FEATURES))
        if r.random() < 0.5:
            p += " " + r.choice(TIMES + WEATHER)
    elif shape < 0.85:
        style = r.choice(["oil painting", "watercolor painting", "photograph",
                          "pencil sketch", "impressionist painting", "matte painting",
                          "landscape photograph", "ink drawing", "digital painting",
                          "postcard", "panoramic photo", "gouache painting"])
        p = "%s of %s %s" % (art(style), land, r.choice(TIMES + WEATHER))
    else:
        p = "%s, %s, %s" % (land, r.choice(TIMES + WEATHER), r.choice(CAMERA + QUALITY))
    return p


def t_building(r):
    # "an abandoned lighthouse on a cliff during a thunderstorm"
    b = r.choice(BUILDINGS)
    adj = r.choice(BUILDING_ADJ) if r.random() < 0.7 else ""
    if adj and adj in b:
        adj = ""
    p = "%s %s" % (art((adj + " " + b).strip()), r.choice(BUILDING_SETTINGS))
    if r.random() < 0.55:
        p += " " + r.choice(TIMES + WEATHER)
    if r.random() < 0.3:
        p += ", " + r.choice(CAMERA + STYLES)
    return p


def t_interior(r):
    # "interior of a cozy cabin with a fireplace, warm lighting"
    room = r.choice(ROOMS)
    adj = r.choice(ROOM_ADJ)
    shape = r.random()
    f1, f2 = r.sample(ROOM_FEATURES, 2)
    if shape < 0.4:
        p = "interior of %s with %s, %s" % (art(adj + " " + room), f1, r.choice(LIGHTING))
    elif shape < 0.7:
        p = "%s with %s and %s" % (art(adj + " " + room), f1, f2)
    elif shape < 0.85:
        p = "an empty %s %s" % (room, r.choice([t for t in TIMES if not t.startswith("under")]))
    else:
        p = "%s %s, %s, %s" % (adj, room, r.choice(LIGHTING), r.choice(["interior design", "architectural photography", "wide angle", "magazine photo", "3d render"]))
    return p


def t_aerial(r):
    # "aerial view of a winding road through an autumn forest"
    head = r.choice(["aerial view of", "drone shot of", "bird's eye view of",
                     "satellite image of", "an aerial photograph of", "a top-down view of"])
    p = "%s %s" % (head, r.choice(SCENE_SUBJECTS + LANDSCAPES))
    if r.random() < 0.5:
        p += " " + r.choice(TIMES + WEATHER)
    return p


def t_macro(r):
    # "macro photo of a dewdrop on a leaf"
    head = r.choice(["macro photo of", "close-up of", "extreme close-up of",
                     "a macro shot of", "a detailed close-up of", "microscope image of"])
    p = "%s %s" % (head, r.choice(MACRO_SUBJECTS))
    if r.random() < 0.5:
        p += ", " + r.choice(["bokeh", "shallow depth of field", "soft light",
                              "studio lighting", "black background", "natural light",
                              "high detail", "sharp focus", "morning light"])
    return p


def t_keywords(r):
    # "a samurai in a bamboo forest, ukiyo-e woodblock print, dramatic lighting, highly detailed"
    shape = r.random()
    if shape < 0.3:
        kind, animal = r.choice(ALL_ANIMALS)
        subj = "%s %s" % (art(animal), r.choice(ANIMAL_PLACES[kind]))
    elif shape < 0.6:
        subj = "%s %s" % (_person(r, 0.5), _place_for(r, "any"))
    elif shape < 0.8:
        subj = art(r.choice(BUILDINGS)) + " " + r.choice(BUILDING_SETTINGS)
    else:
        subj = r.choice(LANDSCAPES)
    n = r.choice([1, 2, 2, 3])
    style = r.choice(STYLES + PHOTO_STYLES)
    if style in PHOTO_STYLES:
        pool = CAMERA + LIGHTING + QUALITY
    else:
        pool = NEUTRAL_TERMS + LIGHTING + ["trending on artstation", "award winning", "4k", "8k"]
    extras = [style] + r.sample(pool, n)
    return ", ".join([subj] + extras)


def t_still_life(r):
    # "still life of a ceramic vase and three lemons on a linen cloth, oil painting"
    o1, o2 = r.sample(TABLETOP, 2)
    items = "%s and %s" % (art(r.choice(OBJECTS[o1]) + " " + o1), art(r.choice(OBJECTS[o2]) + " " + o2))
    if r.random() < 0.4:
        items = "%s, %s and %s" % (art(r.choice(OBJECTS[o1]) + " " + o1),
                                   r.choice(TABLE_SMALL), art(r.choice(OBJECTS[o2]) + " " + o2))
    head = r.choice(["still life of", "a still life with", "product photo of",
                     "a painting of", "a photo of"])
    p = "%s %s on %s" % (head, items, r.choice(SURFACES))
    if r.random() < 0.6:
        if "photo" in head:
            p += ", " + r.choice(CAMERA + LIGHTING)
        elif "painting" in head:
            p += ", " + r.choice(NEUTRAL_TERMS + LIGHTING)
        else:
            p += ", " + r.choice(STYLES + LIGHTING)
    return p


INDOOR_SPOT_WORDS = ("table", "windowsill", "bed", "shelf", "desk", "counter", "sofa",
                     "floor", "room", "piano", "window", "stack of books")


def t_there_is(r):
    # "there is a cat sleeping on the windowsill"
    if r.random() < 0.5:
        thing = r.choice(SMALL_OBJECTS)
        p = "there is %s %s" % (thing, r.choice(FURNITURE_SPOTS))
    else:
        obj = r.choice(sorted(OBJECTS))
        mat = r.choice(OBJECTS[obj])
        if r.random() < 0.4:
            n = r.choice(["two", "three", "four", "five", "several", "many", "a few"])
            p = "there are %s %s %s %s" % (n, mat, plural(obj), r.choice(FURNITURE_SPOTS))
        else:
            p = "there is %s %s" % (art(mat + " " + obj), r.choice(FURNITURE_SPOTS))
    if r.random() < 0.2 and any(w in p for w in INDOOR_SPOT_WORDS):
        p += " " + r.choice(["and sunlight coming through the window", "in the morning",
                             "next to a lamp", "next to a plant", "in a quiet room"])
    return p


def t_clothing(r):
    # "a young woman wearing a red raincoat on a busy street"
    who = _person(r, 0.5)
    p = "%s %s %s" % (who, r.choice(["wearing", "in", "dressed in"]), r.choice(CLOTHING))
    x = r.random()
    if x < 0.6:
        p += " " + _place_for(r, "any")
    elif x < 0.8:
        act, tag = _action_for(r, who)
        p += " " + act + (" " + _place_for(r, tag) if r.random() < 0.5 else "")
    if r.random() < 0.25:
        p += ", " + r.choice(CAMERA + STYLES)
    return p


def t_short(r):
    # "a sleeping fox", "snowy mountains at dawn", "red tulips"
    shape = r.random()
    if shape < 0.3:
        if r.random() < 0.4:
            adj, noun = r.choice(SHORT_SUBJECT_ADJ)
        else:
            adj, noun = r.choice(SHORT_ADJ), r.choice(SHORT_NOUNS)
        if noun.endswith("s"):
            word = "%s %s" % (adj, noun)
        else:
            word = art("%s %s" % (adj, noun))
        if r.random() < 0.4:
            word += " " + r.choice(TIMES + WEATHER)
        return word
    if shape < 0.55:
        _, animal = r.choice(ALL_ANIMALS)
        adj = r.choice(ANIMAL_ADJ)
        if r.random() < 0.6:
            return (art(adj + " " + animal) + r.choice(["", "", ", portrait", ", photo", ", close-up"]))
        return "%s %s" % (adj, plural(animal))
    if shape < 0.7:
        return "%s %s" % (r.choice(COLOURS), plural(r.choice(PLANTS)))
    if shape < 0.85:
        obj = r.choice(sorted(OBJECTS))
        return art(r.choice(OBJECTS[obj]) + " " + obj) + r.choice(
            ["", " on white", ", product photo", ", studio shot", " in a shop window"])
    land = r.choice(LANDSCAPES)
    adj = r.choice(SHORT_ADJ)
    for det in ("a ", "an ", "the "):
        if land.startswith(det):
            rest = land[len(det):]
            return ("the " if det == "the " else art(adj + " " + rest)[: -len(adj + " " + rest)]) + adj + " " + rest
    return "%s %s" % (adj, land)


def t_vehicle_other(r):
    # "a sailboat moored in a small harbor at dawn", "a steam locomotive crossing a stone bridge"
    kind = r.random()
    if kind < 0.4:
        v, poses = r.choice(BOATS), BOAT_POSES
    elif kind < 0.7:
        v = r.choice(AIRCRAFT)
        poses = AIR_POSES + (FLOATING_POSES if v in FLOATING else POWERED_POSES)
    else:
        v, poses = r.choice(TRAINS), TRAIN_POSES
    if r.random() < 0.4:
        v = r.choice(COLOURS + ["old", "small", "vintage", "wooden", "rusty", "lonely", "tiny"]) + " " + v
    p = "%s %s" % (art(v), r.choice(poses))
    if r.random() < 0.45:
        p += " " + r.choice(TIMES + WEATHER)
    if r.random() < 0.3:
        p += ", " + r.choice(CAMERA + STYLES)
    return p


def t_poster(r):
    # "a vintage travel poster of a coastal city", "a children's book illustration of a fox reading a book"
    head = r.choice(POSTER_KINDS)
    shape = r.random()
    if shape < 0.35:
        kind, animal = r.choice(ALL_ANIMALS)
        subj = "%s %s" % (art(animal), r.choice(ANIMAL_ACTIONS[kind]))
    elif shape < 0.55:
        _, animal = r.choice(ALL_ANIMALS)
        act, _tag = r.choice(PERSON_ACTIONS)
        subj = "%s %s" % (art(animal), act)  # whimsical anthropomorphic scenes
    elif shape < 0.7:
        subj = r.choice(CITY_TYPES + LANDSCAPES)
    elif shape < 0.85:
        who = _person(r, 0.4)
        subj = "%s %s" % (who, _action_for(r, who)[0])
    else:
        subj = art(r.choice(PLANTS))
        if r.random() < 0.5:
            head = r.choice(["a botanical illustration of", "a scientific drawing of",
                             "a pressed-flower card with", "a seed packet showing"])
    return "%s %s" % (head, subj)


def t_view(r):
    # "view of the ocean from a hotel balcony"
    subj = r.choice(["the ocean", "the mountains", "the city", "a valley", "the harbor",
                     "the old town", "a lake", "the desert", "the countryside",
                     "the river", "the skyline", "rice fields", "the coastline",
                     "snow-capped peaks", "a stormy sea", "the rooftops", "a forest"])
    p = "%s %s %s" % (r.choice(["view of", "a view of", "looking at", "a panoramic view of"]),
                      subj, r.choice(VANTAGES))
    if r.random() < 0.5:
        p += " " + r.choice(TIMES + WEATHER)
    return p


def t_counted_objects(r):
    # "three ceramic mugs on a shelf"
    obj = r.choice(TABLETOP)
    mat = r.choice(OBJECTS[obj])
    n = r.choice(["two", "three", "four", "five", "six", "a row of", "a pile of",
                  "a collection of", "a pair of", "a dozen", "several"])
    p = "%s %s %s" % (n, mat, plural(obj))
    p += " " + r.choice(FURNITURE_SPOTS + ["in a shop window", "at a flea market",
                                             "against a white wall", "in a museum display case"])
    if r.random() < 0.3:
        p += ", " + r.choice(STYLES + CAMERA)
    return p


def t_plant(r):
    # "a potted fern on a windowsill", "a blooming cherry tree by a stone wall in spring"
    plant = r.choice(PLANTS)
    adjs = PLANT_ADJ if plant in FLOWERS else [a for a in PLANT_ADJ if a not in PLANT_COLOURS]
    adj = r.choice(adjs) if r.random() < 0.6 else ""
    if plant in FLOWERS and r.random() < 0.3:
        flowers = (adj + " " if adj else "") + plural(plant)
        if r.random() < 0.5:
            p = "%s %s %s" % (r.choice(["a field of", "a row of", "a cluster of", "a carpet of"]),
                              flowers, r.choice(["on a hillside", "under a blue sky", "at sunset",
                                                 "in the rain", "along a country road",
                                                 "in front of a farmhouse", "in the morning mist"]))
        else:
            p = "%s %s %s" % (r.choice(["a vase of", "a bunch of", "a bouquet of", "a jar of"]),
                              flowers, r.choice(["on a kitchen table", "on a windowsill",
                                                 "on a wooden table", "by the window",
                                                 "on a white background", "on a bedside table"]))
    else:
        p = "%s %s" % (art((adj + " " + plant).strip()), r.choice(PLANT_SETTINGS))
    if r.random() < 0.3:
        p += ", " + r.choice(STYLES + CAMERA)
    return p


def t_with(r):
    # "a girl with a red balloon"
    who = _person(r, 0.4)
    item = r.choice(WITH_OBJECTS)
    if "her shoulder" in item or "his shoulder" in item:
        item = "a parrot on the shoulder"
    p = "%s with %s" % (who, item)
    if r.random() < 0.6:
        p += " " + r.choice(PLACES["out"] + PLACES["city"] + PLACES["in"])
    if r.random() < 0.3:
        p += ", " + r.choice(STYLES)
    return p


def t_style_of(r):
    # "a fox in the snow in the style of ukiyo-e", "a lighthouse, painted in watercolor"
    shape = r.random()
    if shape < 0.5:
        kind, animal = r.choice(ALL_ANIMALS)
        subj = "%s %s" % (art(animal), r.choice(ANIMAL_PLACES[kind]))
    else:
        subj = r.choice([art(r.choice(BUILDINGS)), r.choice(LANDSCAPES), r.choice(DISHES),
                         r.choice(SMALL_OBJECTS), _person(r, 0.5)])
    style = r.choice(["ukiyo-e", "art nouveau", "art deco", "pop art", "cubism",
                      "impressionism", "a medieval manuscript", "a children's picture book",
                      "a 1950s advertisement", "a renaissance painting", "a video game",
                      "a stained glass window", "an old photograph", "a japanese woodblock print",
                      "a soviet propaganda poster", "a vintage comic", "chinese ink painting",
                      "a botanical drawing", "a blueprint", "a cave painting", "pixel art",
                      "an 80s anime", "a claymation film", "a pop-up book", "a wes anderson film"])
    head = r.random()
    if head < 0.5:
        return "%s in the style of %s" % (subj, style)
    if head < 0.75:
        how = r.choice([
            ("painted in", ["watercolor", "oil paint", "acrylics", "gouache", "ink"]),
            ("drawn in", ["pencil", "crayons", "colored pencils", "ink", "chalk", "charcoal"]),
            ("rendered as", ["a 3d model", "a low poly model", "a paper cutout", "a mosaic",
                             "a voxel model", "a clay figure"]),
            ("made of", ["clay", "lego bricks", "felt", "glass", "wood", "origami paper",
                         "yarn", "candy", "ice", "sand", "gold", "paper"]),
        ])
        return "%s, %s %s" % (subj, how[0], r.choice(how[1]))
    return "%s of %s" % (art(r.choice(["painting", "drawing", "illustration", "photo",
                                       "sketch", "render", "sculpture", "woodcut", "engraving"])), subj)


def t_material(r):
    # "a chair made of glass", "close-up of a knitted teapot"
    obj = r.choice(sorted(OBJECTS))
    mat_noun = r.choice(["glass", "wood", "marble", "paper", "ice", "gold", "copper",
                         "wicker", "stone", "crystal", "clay", "leaves", "feathers",
                         "chocolate", "yarn", "bamboo", "recycled plastic", "concrete",
                         "brass", "porcelain", "cardboard", "moss", "flowers", "lego bricks"])
    p = "%s made of %s" % (art(obj), mat_noun)
    x = r.random()
    if x < 0.4:
        p += " " + r.choice(FURNITURE_SPOTS + ["in a museum", "in a gallery", "on a white background"])
    elif x < 0.7:
        p = r.choice(["close-up of ", "a photo of ", "product shot of ", "a render of "]) + p
    if r.random() < 0.3:
        p += ", " + r.choice(CAMERA + LIGHTING)
    return p


def t_caption(r):
    # plain captions in the style of photo datasets:
    # "a man is riding a horse on the beach", "the kitchen has white cabinets and a wooden floor"
    shape = r.random()
    if shape < 0.35:
        who = _person(r, 0.3)
        act, tag = _action_for(r, who)
        return "%s is %s %s" % (who, act, _place_for(r, tag))
    if shape < 0.55:
        room = r.choice(ROOMS)
        f1, f2 = r.sample(ROOM_FEATURES, 2)
        return "the %s has %s and %s" % (room, f1, f2)
    if shape < 0.75:
        kind, animal = r.choice(ALL_ANIMALS)
        return "%s is %s %s" % (art(animal), r.choice(ANIMAL_ACTIONS[kind]), r.choice(ANIMAL_PLACES[kind]))
    if shape < 0.9:
        v = r.choice(ROAD_VEHICLES)
        return "%s %s is parked %s" % (art(r.choice(COLOURS)), v, r.choice(
            ["on the side of the road", "in front of a house", "next to a tree",
             "outside a shop", "in a driveway", "near the beach", "under a bridge",
             "in an empty lot", "by the curb"]))
    n = r.choice(["two", "three", "four", "some", "several", "many"])
    people = r.choice(PEOPLE_PL)
    return "%s %s are %s %s" % (n, people, r.choice(GROUP_ACTIONS)[0], r.choice(PLACES["out"] + PLACES["in"]))


def t_time_scene(r):
    # "sunset over the ocean", "fog rolling over the hills at dawn"
    phen = r.choice(["sunset over", "sunrise over", "fog rolling over", "storm clouds over",
                     "a rainbow over", "lightning over", "moonrise over", "snow falling on",
                     "rain falling on", "the milky way over", "northern lights over",
                     "mist rising from", "the first light of day over", "fireworks over",
                     "a full moon over", "shadows stretching across", "autumn leaves falling on"])
    place = r.choice(["the ocean", "the hills", "a quiet village", "the city", "a lake",
                      "the desert", "a pine forest", "the mountains", "a wheat field",
                      "the harbor", "the rooftops", "a river", "a canyon", "a small town",
                      "the bay", "an old bridge", "a castle", "a graveyard", "the valley",
                      "a busy street", "an empty parking lot", "a park", "the sea"])
    p = "%s %s" % (phen, place)
    if r.random() < 0.45:
        p += ", " + r.choice(CAMERA + STYLES)
    return p


# (template, weight)
TEMPLATES = [
    (t_object_pose, 5), (t_portrait, 6), (t_group, 7), (t_food, 6), (t_city, 4),
    (t_person_action, 9), (t_sentence, 6), (t_while, 2), (t_animal, 10),
    (t_animal_group, 3), (t_two_animals, 3), (t_landscape, 7), (t_building, 6),
    (t_interior, 5), (t_aerial, 3), (t_macro, 2), (t_keywords, 5),
    (t_still_life, 3), (t_there_is, 3), (t_clothing, 5), (t_short, 5),
    (t_vehicle_other, 5), (t_poster, 4), (t_view, 2), (t_counted_objects, 3),
    (t_plant, 4), (t_with, 4), (t_style_of, 5), (t_material, 3), (t_caption, 6),
    (t_time_scene, 3),
]

# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def clean(text: str) -> str:
    text = " ".join(text.split())
    text = text.replace(" ,", ",").replace(",,", ",").strip(" ,")
    return text


def load_benchmark(pattern: str = BENCHMARK_GLOB) -> set:
    cells = set()
    for path in sorted(glob.glob(pattern)):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                for cell in row:
                    if cell.strip():
                        cells.add(normalise(cell))
    return cells


_BANNED_RE = re.compile(r"|".join(re.escape(b) for b in BANNED))


# long words that may legitimately repeat in one prompt
_ECHO_OK = {"through", "together", "flowers", "painting", "photograph", "lighting"}


def acceptable(prompt: str) -> bool:
    n = cap_words(prompt)
    if not (MIN_WORDS <= n <= MAX_WORDS):
        return False
    if _BANNED_RE.search(prompt.lower()):
        return False
    # no immediately repeated word ("in in", "a a")
    words = prompt.lower().replace(",", "").replace(".", "").split()
    if any(a == b for a, b in zip(words, words[1:])):
        return False
    # no echoed stems such as "a sleepy guitarist sleeping", "a laughing boy laughing"
    stems = [w[:5] for w in words if len(w) >= 6 and w not in _ECHO_OK]
    if len(stems) != len(set(stems)):
        return False
    return True


def generate(target: int = TARGET, seed: int = SEED) -> list:
    rng = random.Random(seed)
    funcs = [t for t, _ in TEMPLATES]
    weights = [w for _, w in TEMPLATES]
    seen, out = set(), []
    attempts = 0
    while len(out) < target and attempts < target * 50:
        attempts += 1
        fn = rng.choices(funcs, weights)[0]
        prompt = clean(fn(rng))
        key = normalise(prompt)
        if key in seen or not acceptable(prompt):
            continue
        seen.add(key)
        out.append(prompt)
    rng.shuffle(out)
    return out


def main() -> None:
    prompts = generate()
    bench = load_benchmark()
    prompts = [p for p in prompts if normalise(p) not in bench]
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    with open(OUT_PATH, "w", encoding="utf-8", newline="\n") as f:
        for p in prompts:
            f.write(p + "\n")
    print("wrote %d prompts (%d templates) to %s" % (len(prompts), len(TEMPLATES), OUT_PATH))


if __name__ == "__main__":
    main()
