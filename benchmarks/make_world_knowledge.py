"""Write ``benchmarks/data/world_knowledge.json``: the world-knowledge benchmark, from the
hand-written tables below (issue 28, item 5).

Every pair is an implicit prompt, a noun phrase that names a drawable thing only by what one
knows of it ("the traditional food of the Mid-Autumn Festival"), and its explicit answer, a
short drawable noun phrase ("mooncakes"). Written from general knowledge, facts checked one
by one, contested answers left out; nothing here comes from the WISE benchmark (the held-out set).

Two kinds of table:

- ``FAMILIES``: a template shared by several entities ("the traditional food of {}"). In each
  family every third entry (the 3rd, 6th, ...; the 2nd of a family of two) is never edited: a
  *look-alike* of the edited ones, the same form with another entity; it keeps the template.
- ``FREE``: a description of its own. Every sixth entry (the 6th, 12th, ...) is never edited.

Parts: every tenth family (the 1st, 11th, ...) and every tenth free entry (the 1st, 11th, ...)
is the dev part (for tuning), the rest the test part; a family stays whole in one part, so a
look-alike's edited partners are in its part. The pairs are then shuffled with a fixed seed, so
that the first N edited pairs (``--limit N``) and batches of N in file order mix the domains.

    .venv/bin/python benchmarks/make_world_knowledge.py   # rewrites the JSON; deterministic
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "world_knowledge.json"
SEED = 28

#: evaluation contexts: none an edit template (``sites.EDIT_TEMPLATES``), a floor check context
#: (``floor.CHECK_CONTEXTS``) or a kept prompt's extra context (``preserve.MORE_CONTEXTS``); a test checks
CONTEXTS = ["an oil painting of {}", "a photograph of {} near a river, golden hour", "a magazine photo of {}",
            "a woodcut print of {}"]

#: everyday captions no edit may move: ``metrics.NEUTRAL_PROMPTS`` and eighteen more
NEUTRAL = [
    "a dog running on the grass", "a bowl of soup on a wooden table", "the president of france giving a speech",
    "a red sports car on a mountain road", "a giant panda eating bamboo", "a lighthouse on a cliff at sunset",
    "a child reading a book in bed", "the logo of a tech company", "a fox in the snow",
    "an astronaut floating in space", "a cup of coffee and a croissant", "a crowded market in morocco",
    "a bowl of ripe pears on a kitchen table", "a tram passing through a busy street at dusk",
    "an old man playing chess in a park", "a family having a picnic on the grass", "a kayak on a misty river at dawn",
    "a cyclist riding up a steep hill", "a loaf of bread cooling on a rack", "children splashing in a swimming pool",
    "a snowy forest path in the morning", "a woman painting a fence in her backyard",
    "a busy airport terminal with travellers", "a candle burning on a windowsill at night",
    "a waiter carrying plates in a crowded restaurant", "raindrops running down a window",
    "a field of sunflowers under a cloudy sky", "a potter shaping clay on a wheel", "a row of colourful beach huts",
    "a student studying at a desk with a lamp",
]

#: (domain, category, template, "entity | answer" lines)
FAMILIES = [
    ("culture", "festival food", "the traditional food of {}", """
the Mid-Autumn Festival | mooncakes
the Dragon Boat Festival | zongzi wrapped in bamboo leaves
Hanukkah | potato latkes
Thanksgiving in the United States | a roast turkey
Passover | matzo crackers
Purim | hamantaschen cookies
Burns Night | haggis
the Lantern Festival | tangyuan rice balls in syrup
Holi | gujiya pastries
the Day of the Dead in Mexico | pan de muerto
Mardi Gras in New Orleans | a king cake
the Korean harvest festival Chuseok | songpyeon rice cakes
Christmas in Italy | a panettone
Christmas in Germany | a stollen
Epiphany in France | a galette des rois
Christmas in Britain | a Christmas pudding
Saint Lucia's Day in Sweden | saffron buns
Easter in Britain | hot cross buns
Shrove Tuesday in England | pancakes
the Korean New Year | tteokguk rice cake soup
Rosh Hashanah | apple slices dipped in honey
"""),
    ("culture", "traditional dress", "the traditional dress of {}", """
Japan | a kimono
Korea | a hanbok
Vietnam | an ao dai
Scotland | a tartan kilt
Indian women | a sari
Bavarian women | a dirndl
ancient Roman citizens | a toga
the Maasai | a red shuka cloth
Filipino men | a barong tagalog
Pakistan | a shalwar kameez
Indonesian women | a kebaya
men in Saudi Arabia | a white thobe
1920s Shanghai women | a qipao
Ghana | kente cloth
the Sami people | a gakti tunic
"""),
    ("culture", "headwear", "the traditional headwear of {}", """
Mexican horsemen | a wide-brimmed sombrero
Ottoman men | a red fez
Vietnamese rice farmers | a conical straw hat
Sikh men | a turban
Plains Indian chiefs | a feathered war bonnet
Basque shepherds | a beret
"""),
    ("culture", "traditional instrument", "the traditional instrument of {}", """
the Scottish Highlands | bagpipes
Aboriginal Australians | a didgeridoo
Russian folk music | a balalaika
Hindustani classical music | a sitar
Trinidad and Tobago | a steelpan drum
the Swiss Alps | an alphorn
tango | a bandoneon
the Andes | a pan flute
Hawaii | a ukulele
Greek folk music | a bouzouki
Ukraine | a bandura
"""),
    ("culture", "traditional drum", "the traditional drum of {}", """
Japan | a taiko drum
West Africa | a djembe
Ireland | a bodhran
Hindustani classical music | a pair of tabla drums
"""),
    ("culture", "traditional dance", "the traditional dance of {}", """
Hawaii | hula dancers
Buenos Aires | tango dancers
Andalusia | a flamenco dancer
Rio de Janeiro's carnival | samba dancers
the Maori | the haka
Ireland | Irish step dancers
the Dominican Republic | merengue dancers
Ukraine | hopak dancers
Tamil Nadu | a Bharatanatyam dancer
Jalisco in Mexico | the Mexican hat dance
Vienna's ballrooms | the Viennese waltz
Colombia | cumbia dancers
"""),
    ("culture", "national sport", "the national sport of {}", """
Japan | sumo wrestling
Afghanistan | buzkashi
Bhutan | archery
Thailand | Muay Thai boxing
South Korea | taekwondo
Bangladesh | kabaddi
"""),
    ("culture", "traditional dwelling", "the traditional dwelling of {}", """
Mongolian nomads | a yurt
the Inuit on winter hunts | an igloo
the Plains Indians | a tipi
the Bedouin | a black goat-hair tent
the Pueblo peoples | an adobe pueblo
"""),
    ("culture", "national flag", "the national flag of {}", """
Japan | a white flag with a red disc
Canada | a red and white flag with a maple leaf
Switzerland | a square red flag with a white cross
Brazil | a green flag with a yellow diamond and a blue globe
Lebanon | a flag with a green cedar tree between red stripes
Nepal | a flag of two stacked crimson triangles
Turkey | a red flag with a white crescent and star
Bangladesh | a green flag with a red disc
the United Kingdom | the Union Jack
the United States | the Stars and Stripes
India | a saffron, white and green flag with a blue wheel
Mexico | a green, white and red flag with an eagle on a cactus
Sweden | a blue flag with a yellow Nordic cross
Denmark | a red flag with a white Nordic cross
Finland | a white flag with a blue Nordic cross
China | a red flag with five yellow stars
Vietnam | a red flag with one yellow star
Cyprus | a white flag with a copper-coloured map of the island
Kenya | a black, red and green flag with a Maasai shield
Argentina | a light blue and white flag with a golden sun
Israel | a white flag with a blue Star of David
Greece | a blue and white striped flag with a cross
South Korea | a white flag with a red and blue circle and black bars
Ireland | a green, white and orange flag
Germany | a black, red and gold flag
"""),
    ("science", "national animal", "the national animal of {}", """
Scotland | a unicorn
India | a Bengal tiger
Canada | a beaver
Botswana | a zebra
Tanzania | a giraffe
Bhutan | a takin
Indonesia | a Komodo dragon
Pakistan | a markhor
Belarus | a European bison
Wales | a red dragon
"""),
    ("science", "national bird", "the national bird of {}", """
New Zealand | a kiwi bird
the United States | a bald eagle
India | a peacock
Guatemala | a resplendent quetzal
Colombia | an Andean condor
Peru | an Andean cock-of-the-rock
the Bahamas | a flamingo
Uganda | a grey crowned crane
Papua New Guinea | a bird of paradise
Nepal | a Himalayan monal
South Africa | a blue crane
Japan | a green pheasant
"""),
    ("science", "national flower", "the national flower of {}", """
India | a pink lotus
Scotland | a purple thistle
Wales | a daffodil
Mexico | a dahlia
South Korea | a rose of Sharon
Malaysia | a red hibiscus
Singapore | a Vanda Miss Joaquim orchid
Bangladesh | a white water lily
Pakistan | jasmine flowers
Peru | a cantuta flower
South Africa | a king protea
Australia | golden wattle
Chile | a copihue flower
the Philippines | sampaguita jasmine
Finland | lily of the valley
Nepal | a red rhododendron
Bhutan | a blue poppy
Sri Lanka | a blue water lily
"""),
]
FAMILIES += [
    ("science", "record animals", "the largest {} in the world", """
animal | a blue whale
land animal | an African bush elephant
bird | an ostrich
fish | a whale shark
reptile | a saltwater crocodile
big cat | a Siberian tiger
rodent | a capybara
lizard | a Komodo dragon
penguin | an emperor penguin
deer | a moose
amphibian | a Chinese giant salamander
jellyfish | a lion's mane jellyfish
primate | an eastern gorilla
single flower | a Rafflesia flower
tree species by volume | a giant sequoia
"""),
    ("places", "record places", "the largest {} on Earth", """
ocean | the Pacific Ocean
hot desert | the Sahara Desert
coral reef system | the Great Barrier Reef
tropical rainforest | the Amazon rainforest
island | Greenland
cave passage | the Son Doong cave
"""),
    ("science", "record animals", "the smallest {} in the world", """
bird | a bee hummingbird
dog breed | a chihuahua
bear | a sun bear
"""),
    ("science", "record animals", "the fastest {} on Earth", """
land animal | a cheetah
bird in a dive | a peregrine falcon
"""),
    ("places", "record places", "the tallest {} on Earth", """
mountain above sea level | Mount Everest
waterfall | Angel Falls
living tree species | a coast redwood
"""),
    ("science", "chemical elements", "the chemical element with the symbol {}", """
Au | gold nuggets
Ag | silver
Fe | iron
Hg | liquid mercury
Cu | copper
Pb | lead
Sn | tin
S | yellow sulfur crystals
"""),
    ("science", "chemistry", "the everyday name of {}", """
sodium chloride | table salt
sodium bicarbonate | baking soda
solid carbon dioxide | dry ice
sucrose | table sugar
hydrated iron oxide on steel | rust
calcium sulfate dihydrate | gypsum
dilute acetic acid | vinegar
"""),
    ("science", "planets", "the planet known as {}", """
the Red Planet | Mars
the Morning Star | Venus
the Blue Planet | Earth
"""),
    ("places", "residences", "the official residence of {}", """
the British monarch in London | Buckingham Palace
the President of the United States | the White House
the President of France | the Elysee Palace
the British Prime Minister | 10 Downing Street
the Emperor of Japan | the Tokyo Imperial Palace
"""),
    ("places", "parliaments", "the parliament building of {}", """
the United Kingdom | the Palace of Westminster
Hungary | the Hungarian Parliament Building on the Danube
Germany | the Reichstag building with its glass dome
the United States | the United States Capitol
"""),
    ("places", "mountains", "the highest mountain in {}", """
Africa | Mount Kilimanjaro
Japan | Mount Fuji
the Alps | Mont Blanc
North America | Denali
South America | Aconcagua
Greece | Mount Olympus
Turkey | Mount Ararat
Antarctica | the Vinson Massif
New Zealand | Aoraki Mount Cook
mainland Australia | Mount Kosciuszko
"""),
    ("places", "rivers", "the longest river in {}", """
Europe | the Volga River
China | the Yangtze River
South America | the Amazon River
the United Kingdom | the River Severn
Australia | the Murray River
France | the Loire River
India | the Ganges River
"""),
    ("places", "skyscrapers", "the tallest building in {}", """
Taipei | Taipei 101
Shanghai | the Shanghai Tower
London | the Shard
New York City | One World Trade Center
Chicago | the Willis Tower
Seoul | the Lotte World Tower
Mecca | the Makkah Royal Clock Tower
Saint Petersburg | the Lakhta Center
Dubai | the Burj Khalifa
"""),
    ("places", "bridges", "the famous old bridge of {}", """
Florence | the Ponte Vecchio
Prague | the Charles Bridge
Mostar | the Stari Most
"""),
    ("times", "ancient wonders", "the ancient wonder of {}", """
Rhodes | the Colossus of Rhodes
Alexandria | the Lighthouse of Alexandria
Babylon | the Hanging Gardens of Babylon
Olympia | the Statue of Zeus at Olympia
Giza | the Great Pyramid of Giza
Ephesus | the Temple of Artemis
Halicarnassus | the Mausoleum at Halicarnassus
"""),
    ("times", "inventions", "the device invented by {}", """
Alexander Graham Bell | a telephone
Johannes Gutenberg | a printing press with movable type
the Wright brothers | the Wright Flyer biplane
Karl Benz | the Benz Patent-Motorwagen
Alessandro Volta | a voltaic pile battery
Karl Drais | a wooden running machine bicycle
Elisha Otis | a safety elevator
Willis Carrier | an air conditioner
Laszlo Biro | a ballpoint pen
Eli Whitney | a cotton gin
John Logie Baird | a mechanical television
Edwin Budding | a reel lawn mower
"""),
    ("times", "famous ships", "the ship of {}", """
the Pilgrims of 1620 | the Mayflower
Charles Darwin's voyage | HMS Beagle
Admiral Nelson at Trafalgar | HMS Victory
Ernest Shackleton's Antarctic expedition | the Endurance
Christopher Columbus in 1492 | the Santa Maria
Captain Cook's first voyage | HMS Endeavour
"""),
    ("culture", "religious symbols", "the holy book of {}", """
Islam | the Quran
Christianity | the Bible
Sikhism | the Guru Granth Sahib
Judaism | a Torah scroll
"""),
    ("culture", "religious buildings", "the house of worship of {}", """
Islam | a mosque with minarets
Judaism | a synagogue
Sikhism | a gurdwara
Shinto | a Shinto shrine with a torii gate
Hinduism | a Hindu temple
"""),
    ("culture", "mythology", "the king of the gods in {}", """
Greek mythology | Zeus
Norse mythology | Odin
Roman mythology | Jupiter
"""),
    ("culture", "mythology", "the weapon of {}", """
Thor | the hammer Mjolnir
Zeus | a thunderbolt
Poseidon | a trident
Cupid | a bow and arrow
"""),
]
FAMILIES += [
    ("culture", "signature dish", "the signature dish of {}", """
Valencia | a pan of paella
Beijing | a roast Peking duck
Naples | a Neapolitan pizza
Vienna | a Wiener schnitzel
Hungary | a bowl of goulash
Philadelphia | a cheesesteak sandwich
Chicago | a deep-dish pizza
Marseille | a bowl of bouillabaisse
Quebec | a plate of poutine
Buffalo in New York | spicy chicken wings
New England | a bowl of clam chowder
Belgium | mussels with fries
Peru | a plate of ceviche
Brazil | a pot of feijoada
Vietnam | a bowl of pho
Thailand | a plate of pad thai
Puebla | mole poblano
Poland | a plate of pierogi
Switzerland | a pot of cheese fondue
Jamaica | ackee and saltfish
Milan | a saffron risotto
Bologna | tagliatelle with ragu
"""),
    ("culture", "national flag", "the national flag of {}", """
Italy | a green, white and red vertical tricolour
France | a blue, white and red vertical tricolour
Jamaica | a flag with a yellow diagonal cross and green and black triangles
South Africa | a six-coloured flag with a sideways Y
Bhutan | a yellow and orange flag with a white dragon
Sri Lanka | a maroon flag with a golden lion holding a sword
Norway | a red flag with a blue Nordic cross edged in white
Poland | a white and red flag
Ukraine | a blue and yellow flag
Indonesia | a red and white flag
Austria | a red, white and red striped flag
Belgium | a black, yellow and red vertical tricolour
the Netherlands | a red, white and blue striped flag
Russia | a white, blue and red striped flag
Chile | a white and red flag with a white star on a blue square
Australia | a blue flag with the Union Jack and the Southern Cross
New Zealand | a blue flag with the Union Jack and four red stars
Pakistan | a green flag with a white crescent and star
Estonia | a blue, black and white striped flag
Palau | a light blue flag with a yellow disc
North Macedonia | a red flag with a yellow sun with eight rays
Albania | a red flag with a black double-headed eagle
Barbados | a blue and gold flag with a black trident
Cambodia | a blue and red flag with the white towers of Angkor Wat
"""),
    ("places", "capital cities", "the capital city of {}", """
France | Paris
Japan | Tokyo
Egypt | Cairo
Italy | Rome
Russia | Moscow
Peru | Lima
Australia | Canberra
Canada | Ottawa
Brazil | Brasilia
Turkey | Ankara
Kenya | Nairobi
Morocco | Rabat
Nigeria | Abuja
Thailand | Bangkok
Greece | Athens
Spain | Madrid
Portugal | Lisbon
Argentina | Buenos Aires
Mexico | Mexico City
Cuba | Havana
Austria | Vienna
the Czech Republic | Prague
Hungary | Budapest
Scotland | Edinburgh
Ireland | Dublin
South Korea | Seoul
Vietnam | Hanoi
India | New Delhi
Pakistan | Islamabad
Germany | Berlin
China | Beijing
Norway | Oslo
Sweden | Stockholm
Denmark | Copenhagen
Finland | Helsinki
Iceland | Reykjavik
New Zealand | Wellington
the Philippines | Manila
Ethiopia | Addis Ababa
Chile | Santiago
Colombia | Bogota
the United States | Washington, D.C.
"""),
    ("culture", "zodiac", "the symbol of the zodiac sign {}", """
Aries | a ram
Taurus | a bull
Cancer | a crab
Leo | a lion
Scorpio | a scorpion
Capricorn | a sea-goat with a fish tail
Pisces | two fish swimming in opposite directions
Gemini | a pair of twins
Sagittarius | a centaur archer
Aquarius | a water bearer pouring from a jug
Virgo | a maiden holding wheat
Libra | a pair of balance scales
"""),
    ("culture", "traditional boats", "the traditional boat of {}", """
Venice | a gondola
the Vikings | a longship
old Hong Kong harbour | a junk with red sails
the Inuit hunters | a kayak
the Nile | a felucca
Polynesian navigators | an outrigger canoe
Arabian Gulf traders | a wooden dhow
Kerala's backwaters | a kettuvallam houseboat
"""),
    ("culture", "traditional weapons", "the traditional sword of {}", """
the Japanese samurai | a katana
the Roman legionaries | a gladius
the Scottish Highlanders | a claymore
the Gurkha soldiers | a kukri knife
Malay warriors | a wavy-bladed kris
Persian cavalry | a curved shamshir
"""),
    ("culture", "traditional footwear", "the traditional footwear of {}", """
the Netherlands | wooden clogs
Morocco | pointed babouche slippers
the Anishinaabe | leather moccasins
"""),
    ("culture", "national drink", "the national drink of {}", """
Brazil | a caipirinha
Puerto Rico | a pina colada
Argentina | yerba mate in a gourd
"""),
    ("science", "young animals", "the young of a {}", """
kangaroo | a joey
swan | a cygnet
frog | a tadpole
horse | a foal
goose | a gosling
deer | a fawn
butterfly | a caterpillar
sheep | a lamb
cow | a calf
eagle | an eaglet
owl | an owlet
pig | a piglet
dog | a puppy
hen | a chick
"""),
    ("science", "animal products", "the animal that makes {}", """
silk | a silkworm
honey | a honeybee
pearls | a pearl oyster
dams across streams | a beaver
webs of silk thread | a spider
"""),
    ("science", "plants", "the tree that produces {}", """
acorns | an oak tree
maple syrup | a sugar maple tree
wine-bottle cork | a cork oak tree
coconuts | a coconut palm
olives | an olive tree
dates | a date palm
natural rubber latex | a rubber tree
cocoa beans | a cacao tree
"""),
    ("science", "scientific instruments", "the instrument used to {}", """
see living cells | a microscope
observe distant galaxies | a telescope
measure air pressure | a barometer
record earthquakes | a seismograph
find a ship's latitude from the sun | a sextant
measure wind speed | a cup anemometer
find magnetic north | a compass
measure time with falling sand | an hourglass
measure body temperature | a thermometer
listen to a patient's heartbeat | a stethoscope
weigh things against each other | a balance scale
"""),
    ("culture", "birthstones", "the birthstone of {}", """
January | a garnet
February | an amethyst
March | an aquamarine
April | a diamond
May | an emerald
July | a ruby
August | a peridot
September | a sapphire
"""),
]
FAMILIES += [
    ("times", "ancient capitals", "the ancient capital of {}", """
the Inca Empire | Cusco
the Aztec Empire | Tenochtitlan
the Khmer Empire | Angkor
the Byzantine Empire | Constantinople
the Mongol Empire | Karakorum
the Kingdom of Siam before Bangkok | Ayutthaya
the Assyrian Empire | Nineveh
Japan before Tokyo | Kyoto
the Achaemenid Persian kings | Persepolis
"""),
    ("science", "ingredients", "the main ingredient of {}", """
guacamole | ripe avocados
hummus | chickpeas
tofu | soybeans
pesto | fresh basil leaves
sauerkraut | cabbage
ketchup | tomatoes
popcorn | corn kernels
tahini | sesame seeds
marzipan | almonds
cider | apples
tequila | blue agave plants
sake | rice grains
baba ganoush | aubergines
"""),
    ("culture", "mythology", "the mount of {}", """
Ganesha | a mouse
Shiva | Nandi the bull
Vishnu | the eagle Garuda
Odin | Sleipnir the eight-legged horse
Alexander the Great | the horse Bucephalus
Don Quixote | the horse Rocinante
Brahma | a white swan
"""),
    ("science", "animal homes", "the home of a {}", """
honeybee colony | a beehive
rabbit | a burrow
beaver family | a beaver lodge
ant colony | an anthill
golden eagle | an eyrie on a cliff
termite colony | a termite mound
hermit crab | a borrowed snail shell
badger | a sett
"""),
    ("science", "male animals", "the male of the {}", """
duck | a drake
chicken | a rooster
deer | a stag
sheep | a ram
peafowl | a peacock
horse | a stallion
goose | a gander
"""),
    ("science", "female animals", "the female of the {}", """
horse | a mare
chicken | a hen
deer | a doe
peafowl | a peahen
lion | a lioness
sheep | a ewe
fox | a vixen
"""),
    ("places", "beaches", "the famous beach of {}", """
Rio de Janeiro | Copacabana Beach
Sydney | Bondi Beach
Honolulu | Waikiki Beach
Miami | South Beach
"""),
    ("places", "squares", "the main square of {}", """
Moscow | Red Square
Beijing | Tiananmen Square
Brussels | the Grand Place
Mexico City | the Zocalo
Siena | the Piazza del Campo
Marrakesh | Jemaa el-Fnaa
Isfahan | Naqsh-e Jahan Square
"""),
    ("times", "writing systems", "the writing of {}", """
ancient Egypt | hieroglyphs
the Sumerians | cuneiform on clay tablets
the Vikings | runes carved in stone
Korea | hangul letters
the Inca | quipu knotted cords
"""),
    ("culture", "brand mascots", "the mascot of {}", """
Michelin | the Michelin Man
Linux | Tux the penguin
Kellogg's Frosties | Tony the Tiger
Planters peanuts | Mr. Peanut
Pillsbury | the Pillsbury Doughboy
Energizer batteries | a pink drumming bunny
the Go programming language | a blue gopher
Android | a green robot
"""),
    ("culture", "logos", "the logo of {}", """
Apple | an apple with a bite taken out
Shell | a yellow and red scallop shell
Nike | a swoosh
Mercedes-Benz | a three-pointed star in a circle
the WWF | a black and white panda
Lacoste | a green crocodile
Ferrari | a black prancing horse on yellow
Lamborghini | a golden charging bull
Starbucks | a green two-tailed siren
Peugeot | a standing lion
Mitsubishi | three red diamonds
Audi | four interlocking rings
MGM | a roaring lion
Twitter before 2023 | a blue bird
Puma | a leaping big cat
"""),
    ("culture", "plant emblems", "the plant emblem of {}", """
Ireland | a shamrock
Canada | a red maple leaf
New Zealand | a silver fern
Lebanon | a cedar tree
"""),
    ("culture", "crafts", "the traditional craft of {}", """
Murano | colourful blown glass
Delft | blue and white pottery
Bruges | bobbin lace
Persia | a hand-knotted carpet
Java | batik cloth
the Scottish clans | tartan cloth
"""),
]

#: (domain, category, "prompt | answer" lines)
FREE = [
    ("culture", "festivals", """
the holiday celebrating the birth of Jesus Christ | Christmas
the Hindu festival of lights | Diwali oil lamps
the Hindu spring festival where people throw coloured powder | Holi
the Jewish festival of lights with an eight-branched candelabrum | Hanukkah
the Mexican holiday honouring the dead with marigolds and sugar skulls | the Day of the Dead
the Christian feast of the resurrection with painted eggs | Easter
the October beer festival in Munich | Oktoberfest
the Japanese spring custom of picnicking under blossoming trees | hanami
the pre-Lenten parade festival of Rio de Janeiro | the Rio Carnival
the Spanish festival where crowds throw tomatoes at each other | La Tomatina
the festival in Pamplona where bulls run through the streets | the running of the bulls
the Thai new year festival with water fights | Songkran
the Scottish celebration of the last night of the year | Hogmanay
the night of 31 October with costumes and carved pumpkins | Halloween
the Persian new year celebrated at the spring equinox | Nowruz
the festival where sky lanterns are released in northern Thailand | Yi Peng
the Chinese festival when families sweep their ancestors' tombs | the Qingming Festival
the Japanese festival of dolls for girls on 3 March | Hinamatsuri
the Japanese summer festival of tying wishes to bamboo | Tanabata
the Venetian festival of masks | the Carnival of Venice
the British celebration of 5 November with bonfires and fireworks | Guy Fawkes Night
the Irish saint's day when rivers are dyed green | Saint Patrick's Day
the Muslim festival that ends the month of fasting | Eid al-Fitr
the American holiday of 4 July | Independence Day fireworks
the day of love on 14 February | Valentine's Day
the Chinese festival of racing long decorated boats | the Dragon Boat Festival
the Indian kite-flying festival in January | Makar Sankranti
the Swedish midsummer celebration around a flower-decked pole | a maypole dance
the Hindu festival of nine nights honouring the goddess Durga | Navratri
the Jewish harvest festival celebrated in leafy huts | Sukkot
the spring festival of the lunar calendar with red envelopes and firecrackers | Chinese New Year
the Buddhist festival of Buddha's birth with floating lanterns | Vesak
the night of 5 January when the Three Kings parade in Spain | the Cavalcade of Magi
"""),
    ("culture", "foods", """
the Japanese dish of vinegared rice with raw fish | sushi
the Italian flatbread topped with tomato and mozzarella | a pizza
the Korean side dish of fermented spicy cabbage | kimchi
the Spanish cold tomato soup | gazpacho
the Middle Eastern fried chickpea balls | falafel
the French crescent-shaped buttery pastry | a croissant
the Mexican folded corn tortilla with a filling | a taco
the Greek layered pastry with nuts and honey | baklava
the Turkish meat roasted on a vertical spit | doner kebab
the Italian coffee dessert soaked in espresso | tiramisu
the Swiss dish of melted cheese for dipping bread | cheese fondue
the Chinese steamed dumplings served in bamboo baskets | dim sum
the Japanese noodle soup with pork broth | a bowl of ramen
the Indian flatbread baked in a tandoor oven | naan bread
the Russian beetroot soup | borscht
the British dish of battered fish with chips | fish and chips
the American sandwich of a sausage in a long bun | a hot dog
the Spanish fried dough sticks dipped in chocolate | churros
the French almond meringue sandwich cookies in pastel colours | macarons
the German soft knotted bread | a pretzel
the Belgian grid-patterned breakfast cake | a waffle
the Portuguese custard tart | a pastel de nata
the Hawaiian dish of marinated raw fish cubes | a poke bowl
the Vietnamese baguette sandwich | a banh mi
the Japanese deep-fried battered shrimp and vegetables | tempura
the Italian rice balls stuffed and fried | arancini
the Middle Eastern dip of chickpeas and tahini | hummus
the Georgian cheese-filled boat-shaped bread | khachapuri
the Argentinian stuffed pastry turnover | an empanada
the Canadian dish of fries with cheese curds and gravy | poutine
the Korean mixed rice bowl with vegetables and an egg | bibimbap
the Indian triangular fried pastry with spiced potatoes | a samosa
the Japanese rice ball wrapped in seaweed | an onigiri
the Polish boiled dumplings | pierogi
the Spanish potato omelette | a tortilla espanola
the Italian frozen dessert of dense ice cream | gelato
the Middle Eastern sweet pastry of shredded dough and cheese | kunafa
the Jewish braided Sabbath bread | challah
the American dessert of baked apples in a pastry crust | an apple pie
the British afternoon baked good served with jam and clotted cream | scones
the French thin pancake | a crepe
the Japanese sweet red bean fish-shaped cake | taiyaki
the Indian spiced milk tea | masala chai
the Ethiopian spongy sourdough flatbread | injera
the Australian meringue dessert topped with fruit | a pavlova
the Hungarian chimney cake | a kurtoskalacs
the Austrian apple pastry rolled in thin dough | an apple strudel
the Mexican dish of corn dough steamed in husks | tamales
the Brazilian cheese bread rolls | pao de queijo
the Japanese soybean paste soup | miso soup
the Italian pasta sheets layered with sauce and baked | lasagna
the New York ring-shaped bread boiled before baking | a bagel
the Scottish breakfast porridge of oats | a bowl of porridge
the Greek salad ingredient of brined white cheese | feta cheese
the Dutch cheese with a red wax rind | an Edam cheese
the French blue-veined sheep's milk cheese | Roquefort cheese
the Italian cured ham sliced paper-thin | prosciutto
the Spanish cured ham from black Iberian pigs | jamon iberico
the Japanese fermented soybeans with sticky strings | natto
the Filipino purple yam dessert | ube halaya
the Turkish sweet cubes dusted with powdered sugar | Turkish delight
the Swedish cinnamon roll | a kanelbulle
"""),
    ("culture", "customs", """
the Japanese ceremony of preparing powdered green tea | a tea ceremony
the Japanese art of folding paper into figures | origami
the Japanese art of arranging flowers | ikebana
the Chinese art of writing characters with a brush | Chinese calligraphy
the Indian art of painting hands with henna | mehndi designs
the Polynesian art of permanent skin designs | tribal tattoos
the Russian nesting wooden dolls | matryoshka dolls
the Chinese good-luck red paper decorations cut into patterns | paper cuttings
the Mexican papier-mache figure broken open at parties | a pinata
the Japanese lucky cat with a raised paw | a maneki-neko
the Turkish blue glass charm against the evil eye | a nazar amulet
the Native American hoop with a web and feathers hung over beds | a dreamcatcher
the Tibetan flags printed with prayers strung on mountain passes | prayer flags
the Hindu greeting with palms pressed together | a namaste gesture
the German market held in town squares during Advent | a Christmas market
the Mexican day-of-the-dead painted skull | a sugar skull
the Chinese dance of performers inside a costume of a big cat | a lion dance
the Japanese daruma wishing doll | a daruma doll
the Balinese flower offerings in little palm-leaf baskets | canang sari offerings
the Thai garlands of jasmine and marigold | phuang malai garlands
the Hawaiian flower necklace given to visitors | a lei
the Scottish games of tossing a tree trunk | the caber toss
the Japanese stone garden of raked gravel | a zen garden
the Chinese game played with tiles of bamboos, circles and characters | mahjong
the Korean custom of bowing deeply to elders at New Year | sebae
the Irish drink poured with a creamy head in pubs | a pint of stout
the Jewish ceremony of a boy turning thirteen | a bar mitzvah
the Maori greeting of pressing noses together | a hongi
the Japanese public bathhouse | a sento bathhouse
the Finnish hot room for bathing | a sauna
the Turkish steam bath | a hammam
the Japanese outdoor hot spring bath | an onsen
the Russian country house where city dwellers spend summers | a dacha
the Italian public square with a fountain | a piazza
the Spanish late-night meal of small shared plates | tapas
the English custom of a light meal with tea at four o'clock | afternoon tea
the Swedish coffee break with pastries | fika
"""),
]
FREE += [
    ("culture", "dress and objects", """
the Scottish pouch worn at the front of a kilt | a sporran
the Japanese sash tied around a kimono | an obi
the Arab men's headscarf held by a black cord | a keffiyeh with an agal
the tall black fur hat of the King's Guard in London | a bearskin hat
the Russian fur hat with ear flaps | an ushanka
the Russian women's tall ornate headdress | a kokoshnik
the straw hat woven in Ecuador and named after a Central American country | a Panama hat
the Andean wool cape with a hole for the head | a poncho
the Bavarian leather shorts with braces | lederhosen
the Hawaiian short-sleeved patterned shirt | an aloha shirt
the Indian long coat worn by grooms | a sherwani
the Muslim women's headscarf | a hijab
the Jewish skullcap | a kippah
the Chinese silk robe of the Han people | hanfu
the Japanese summer cotton robe | a yukata
the Mexican embroidered women's blouse | a huipil
the Greek soldiers' pleated kilt at the tomb in Athens | a fustanella
the Andean knitted hat with ear flaps | a chullo
the cowboy's wide-brimmed felt hat | a Stetson hat
the Scottish woollen cap with a pompom | a tam o'shanter
the Moroccan hooded robe | a djellaba
the Japanese wooden sandals raised on two teeth | geta sandals
"""),
    ("culture", "instruments", """
the Chinese two-stringed bowed fiddle | an erhu
the Japanese thirteen-string zither | a koto
the Japanese three-stringed lute played with a plectrum | a shamisen
the Chinese plucked zither with movable bridges | a guzheng
the Indonesian orchestra of gongs and metallophones | a gamelan
the West African harp-lute with twenty-one strings | a kora
the African thumb piano | a mbira
the Portuguese twelve-string guitar of fado | a Portuguese guitar
the Indian double-headed barrel drum of Carnatic music | a mridangam
the Middle Eastern pear-shaped fretless lute | an oud
the Indian bowed instrument held upright with many strings | a sarangi
the South American small ten-stringed guitar | a charango
the Irish bellows-blown bagpipes | uilleann pipes
the brass instrument with a slide | a trombone
the largest instrument of the string family played standing | a double bass
the keyboard instrument with pipes in churches | a pipe organ
the Jewish ram's-horn trumpet | a shofar
the Tibetan bowl that sings when rubbed | a singing bowl
the Caribbean scraped gourd instrument | a guiro
the Spanish clicking shells held in the hand | castanets
the Brazilian one-stringed musical bow | a berimbau
the Chinese mouth organ of bamboo pipes | a sheng
the mouth-blown free-reed instrument of blues players | a harmonica
"""),
    ("culture", "art and architecture", """
the painting of a woman with a mysterious smile in the Louvre | the Mona Lisa
Van Gogh's painting of a swirling night sky over a village | The Starry Night
Munch's painting of an anguished figure on a bridge under a red sky | The Scream
Michelangelo's marble statue of a biblical hero | the statue of David
Botticelli's painting of a goddess standing on a seashell | The Birth of Venus
Leonardo's painting of Jesus and the twelve apostles at a meal | The Last Supper
Hokusai's woodblock print of a huge wave off Kanagawa | The Great Wave off Kanagawa
Vermeer's portrait of a girl in a blue and yellow turban looking over her shoulder | Girl with a Pearl Earring
Rodin's bronze statue of a seated man deep in thought | The Thinker
Picasso's black-and-white painting of a bombed Basque town | Guernica
Dali's painting of melting clocks | The Persistence of Memory
Grant Wood's painting of a farmer with a pitchfork and a woman | American Gothic
Klimt's golden painting of an embracing couple | The Kiss
Michelangelo's painted ceiling in the Vatican | the Sistine Chapel ceiling
the ancient Greek armless statue of a goddess in the Louvre | the Venus de Milo
the winged statue of a goddess on a ship's prow in the Louvre | the Winged Victory of Samothrace
the army of clay soldiers buried with China's first emperor | the Terracotta Army
Warhol's prints of soup cans | Campbell's Soup Cans
Monet's paintings of a pond with floating flowers | Water Lilies
Seurat's dotted painting of Parisians on an island park | A Sunday Afternoon on the Island of La Grande Jatte
Hopper's painting of a late-night diner | Nighthawks
Frida Kahlo's double self-portrait | The Two Fridas
Michelangelo's marble statue of Mary holding the dead Jesus | the Pieta
the Flemish brothers' altarpiece in Ghent | the Ghent Altarpiece
the medieval embroidered cloth showing the Norman conquest | the Bayeux Tapestry
Rembrandt's painting of a militia company in the dark | The Night Watch
Bruegel's painting of a tower reaching the sky | The Tower of Babel
the Egyptian painted bust of a queen with a flat-topped crown | the bust of Nefertiti
the golden funeral mask of the boy pharaoh | the mask of Tutankhamun
the statue of a woman with a torch given by France to America | the Statue of Liberty
the giant statue of Christ with open arms above Rio | Christ the Redeemer
the lion with a human head guarding the pyramids | the Great Sphinx of Giza
the huge stone heads of Easter Island | the moai statues
the Belgian bronze statue of a little boy urinating | the Manneken Pis
the bronze statue of a mermaid on a rock in Copenhagen | The Little Mermaid statue
the sculpture of a chrome bean in Chicago | Cloud Gate
the giant steel spider sculpture by Louise Bourgeois | Maman
the steel angel sculpture with spread wings in northern England | the Angel of the North
"""),
    ("culture", "mythology and religion", """
the winged horse of Greek myth | Pegasus
the one-eyed giant of Greek myth | a cyclops
the snake-haired woman whose gaze turns people to stone | Medusa
the half-man half-bull of the Cretan labyrinth | the Minotaur
the three-headed dog guarding the underworld | Cerberus
the bird that rises again from its own ashes | a phoenix
the horse with a single spiral horn | a unicorn
the half-woman half-fish of sea legends | a mermaid
the lion with an eagle's head and wings | a griffin
the Egyptian god with the head of a jackal | Anubis
the Egyptian god with the head of a falcon | Horus
the Hindu god with the head of an elephant | Ganesha
the Hindu monkey god | Hanuman
the Norse world tree | Yggdrasil
the Norse god of mischief | Loki
the Greek goddess of wisdom with an owl | Athena
the Roman god of love with wings and a bow | Cupid
the Greek hero who performed twelve labours | Hercules
the wooden horse that hid Greek soldiers | the Trojan Horse
the Chinese serpent-like creature that brings rain | a Chinese dragon
the Japanese fox spirit with many tails | a kitsune
the Slavic witch who lives in a hut on chicken legs | Baba Yaga
the Scottish lake monster | the Loch Ness Monster
the ape-like creature said to roam the Himalayas | a yeti
the giant hairy creature said to roam the forests of North America | Bigfoot
the vampire count of Bram Stoker's novel | Dracula
the green ogre hero of a DreamWorks film | Shrek
the boy who never grows up and lives in Neverland | Peter Pan
the wooden puppet whose nose grows when he lies | Pinocchio
the girl who follows a white rabbit into Wonderland | Alice
the detective who lives at 221B Baker Street | Sherlock Holmes
the knight of La Mancha who tilts at windmills | Don Quixote
the Danish prince who holds a skull in Shakespeare's play | Hamlet
the whale hunted by Captain Ahab | Moby Dick
the creature assembled by Victor Frankenstein | Frankenstein's monster
the sword pulled from the stone by King Arthur | Excalibur
the cup from the Last Supper sought by knights | the Holy Grail
the outlaw of Sherwood Forest who robbed the rich | Robin Hood
the archangel who slays the dragon | Saint Michael
the saint who brings gifts on Christmas Eve in a red suit | Santa Claus
the bunny that hides eggs at Easter | the Easter Bunny
the Italian witch who brings gifts on Epiphany eve | La Befana
the Christian symbol of the crucifixion | a cross
the Buddhist wheel with eight spokes | the Dharma wheel
the Hindu sacred syllable written as a symbol | the Om symbol
the Jewish six-pointed star | the Star of David
the Taoist symbol of two interlocking black and white halves | the yin-yang symbol
the Islamic symbol of a crescent moon and star | a crescent and star
the Egyptian symbol of life shaped like a looped cross | an ankh
the Christian fish symbol | an ichthys
the meditating founder of Buddhism | the Buddha
the ship Noah built for the flood | Noah's Ark
the garden of Adam and Eve | the Garden of Eden
the Hindu goddess of wealth seated on a lotus | Lakshmi
the many-armed Hindu goddess who rides a tiger | Durga
the dancing Hindu god in a ring of fire | Shiva Nataraja
"""),
    ("culture", "sport and games", """
the sport played on horseback with mallets | polo
the Japanese martial art of the empty hand | karate
the Brazilian martial art mixed with dance | capoeira
the Japanese fencing with bamboo swords | kendo
the American sport with touchdowns | American football
the bat-and-ball game played in whites on a village green | cricket
the sport of hitting a shuttlecock over a net | badminton
the Irish stick-and-ball game | hurling
the Basque handball game played against a wall | pelota
the winter sport of sliding stones on ice toward a target | curling
the sport of sliding headfirst down an ice track on a small sled | skeleton racing
the board game of kings, queens and knights | chess
the Chinese strategy game of black and white stones | a game of Go
the Japanese card game of flowers | hanafuda cards
the trophy of the football World Cup | the FIFA World Cup trophy
the gilded silver cup of the Wimbledon men's champion | the Wimbledon trophy
the trophy of the National Hockey League | the Stanley Cup
the five interlocking rings | the Olympic rings
the flame carried in relay before the Olympic Games | the Olympic torch
the sport of riding a wave on a board | surfing
the New Zealand national rugby team famous for its black kit | the All Blacks
the cycling race around France with a yellow jersey | the Tour de France
the Spanish spectacle of a matador with a red cape | a bullfight
the American baseball stadium with the Green Monster wall | Fenway Park
the London stadium with a white arch | Wembley Stadium
the Roman chariot racing stadium | the Circus Maximus
"""),
]
FREE += [
    ("science", "animals", """
the animal that carries its baby in a pouch and hops | a kangaroo
the Australian tree-dwelling marsupial that eats eucalyptus leaves | a koala
the egg-laying mammal with a duck's bill | a platypus
the black-and-white bear of China that eats bamboo | a giant panda
the striped horse of the African savanna | a zebra
the animal with the longest neck | a giraffe
the slow-moving mammal that hangs upside down in rainforest trees | a sloth
the lizard that changes colour and moves its eyes separately | a chameleon
the bird that can fly backwards | a hummingbird
the fish that puffs up into a spiky ball | a pufferfish
the eight-armed sea creature that squirts ink | an octopus
the Arctic whale with a long spiral tusk | a narwhal
the large white bear of the Arctic | a polar bear
the masked raccoon-like animal from the Himalayas with a ringed tail and red fur | a red panda
the African mammal with a horn on its nose and thick grey skin | a rhinoceros
the river horse of Africa | a hippopotamus
the ant-eating African mammal with a long snout and scales | a pangolin
the spiny African rodent that raises its quills | a porcupine
the nocturnal bird that turns its head almost all the way round | an owl
the black-and-white bird of Europe that steals shiny things in folklore | a magpie
the pink wading bird that stands on one leg | a flamingo
the bird with the largest wingspan that glides over the Southern Ocean | a wandering albatross
the Australian bird that laughs | a kookaburra
the flightless bird of Australia, the second tallest bird | an emu
the animal whose stripes are black on orange fur | a tiger
the spotted big cat that can climb trees with its prey | a leopard
the big cat with a mane | a male lion
the desert animal with one hump | a dromedary camel
the Asian camel with two humps | a Bactrian camel
the South American woolly animal used as a pack animal in the Andes | a llama
the insect that glows at night | a firefly
the insect that turns from a caterpillar into a winged adult with orange and black wings and migrates to Mexico | a monarch butterfly
the crustacean with big claws that turns red when cooked | a lobster
the marine mammal that balances a ball on its nose at circuses | a sea lion
the tusked marine mammal of the Arctic | a walrus
the sea creature shaped like a star | a starfish
the fish that looks like a horse's head and swims upright | a seahorse
the shark with a hammer-shaped head | a hammerhead shark
the reptile that carries its home on its back and lives on the Galapagos | a Galapagos giant tortoise
the venomous snake that spreads a hood | a cobra
the snake with a rattling tail | a rattlesnake
the bird that delivers babies in folklore | a white stork
the dog breed with a barrel chest and a pushed-in face from England | a bulldog
the dog breed that guides rescue work in the Alps with a barrel | a Saint Bernard
the spotted dog breed of a famous Disney film | a Dalmatian
the sled dog of Siberia with blue eyes | a Siberian husky
the Japanese dog breed known for the loyal Hachiko | an Akita
the hairless cat breed | a Sphynx cat
the long-haired cat breed with a flat face | a Persian cat
the cat breed with a dark face and blue eyes from Thailand | a Siamese cat
the Australian mammal that looks like a small bear and digs burrows | a wombat
the Tasmanian marsupial with a loud screech | a Tasmanian devil
the horse-like animal of Central Africa with striped legs | an okapi
the pig-like animal with a short trunk from South America | a tapir
the monkey with a red-and-blue face | a mandrill
the great ape of Borneo with orange hair | an orangutan
the great ape closest to humans that uses tools | a chimpanzee
the primate of Madagascar with a ringed tail | a ring-tailed lemur
the bird that imitates human speech, with colourful feathers | a parrot
the black bird associated with the Tower of London | a raven
the nocturnal flying mammal | a bat
the armoured mammal that rolls into a ball in the Americas | an armadillo
the long-eared desert fox of the Sahara | a fennec fox
the cat-like African animal famous for standing sentry in groups | a meerkat
the deer of Lapland that pulls sleighs | a reindeer
the black-and-white killer of seals and largest dolphin | an orca whale
the insect that builds a paper nest and stings | a wasp
the insect with a long abdomen that hovers over ponds | a dragonfly
the insect that prays with folded front legs | a praying mantis
the red beetle with black spots | a ladybird
the slow garden creature with a spiral shell | a snail
the jellyfish-like colony with a gas-filled purple float | a Portuguese man o' war
the fish that leaps up waterfalls to spawn | a salmon
the colourful fish that lives among sea anemones | a clownfish
the flat fish with a whip-like tail | a stingray
the glowing fish that hangs a lure in front of its mouth | an anglerfish
the frog of the rainforest with bright toxic skin | a poison dart frog
the salamander of Mexico that keeps its gills | an axolotl
"""),
    ("science", "extinct life", """
the extinct flightless bird of Mauritius | a dodo
the largest meat-eating dinosaur with tiny arms | a Tyrannosaurus rex
the dinosaur with plates along its back and a spiked tail | a Stegosaurus
the dinosaur with three horns and a bony frill | a Triceratops
the long-necked giant plant-eating dinosaur | a Brachiosaurus
the flying reptile of the dinosaur age | a pterodactyl
the woolly elephant of the ice age | a woolly mammoth
the ice-age cat with huge fangs | a sabre-toothed cat
the feathered dinosaur-bird of the Jurassic | an Archaeopteryx
the extinct giant shark with teeth as big as a hand | a megalodon
the armoured dinosaur with a club tail | an Ankylosaurus
the extinct sea creatures with coiled shells | ammonites
the extinct marine arthropods of the Cambrian | trilobites
the extinct giant flightless birds of New Zealand | moa birds
the striped extinct marsupial of Tasmania | a thylacine
"""),
    ("science", "plants", """
the plant that traps insects with toothed leaves | a Venus flytrap
the desert plant with spines that stores water | a cactus
the tallest grass, eaten by pandas | bamboo
the flower that turns to follow the sun | a sunflower
the giant cactus of the Arizona desert | a saguaro cactus
the tree of Madagascar with a thick bottle-shaped trunk | a baobab tree
the Japanese art of miniature trees in pots | a bonsai tree
the tree whose leaf is on Canada's flag | a maple tree
the pine-like tree decorated at Christmas | a Christmas tree
the plant of Irish good luck with four leaves | a four-leaf clover
the flower whose bulbs once caused a mania in Holland | a tulip
the flower of remembrance for fallen soldiers | a red poppy
the sacred flower of Buddhism that rises from mud | a lotus flower
the sticky seed heads that float on the wind when blown | a dandelion clock
the poisonous mushroom with a red cap and white spots | a fly agaric mushroom
the fruit of a palm that holds water inside | a coconut
the fruit with a crown of spiky leaves | a pineapple
the spiky Southeast Asian fruit famous for its smell | a durian
the red fruit with seeds on the outside | a strawberry
the fruit with pink skin and white flesh with black seeds from a cactus | a dragon fruit
the fuzzy brown fruit with green flesh | a kiwi fruit
the sour yellow citrus fruit | a lemon
the plant whose leaves are brewed to make tea | a tea plant
the bean that is ground to make coffee | coffee beans
the grain grown in flooded paddies | rice
the tuber brought from the Andes that fed Europe | a potato
the tall grass crushed to make sugar | sugarcane
the plant whose fibres make linen | flax
the fluffy white fibre that grows around seeds | cotton bolls
the aquatic plant used by Egyptians to make paper | papyrus
the shrub with purple flowers grown in Provence fields | lavender
the orange spice from the stigmas of a crocus | saffron threads
the tree whose seeds give nutmeg | a nutmeg tree
the vine whose fruit is made into wine | a grapevine
the oldest living tree species whose leaves turn yellow like fans | a ginkgo tree
the flowering tree of Japan with pale pink blossoms | a cherry blossom tree
the Australian tree with peeling bark that koalas eat | a eucalyptus tree
the seaweed forest of the Pacific coast | a kelp forest
the moss-like growth of fungus and algae on rocks | lichen
"""),
]
FREE += [
    ("science", "phenomena", """
the colourful curtains of light in the northern polar sky | the aurora borealis
the arc of colours in the sky after rain | a rainbow
the spinning funnel of wind that touches the ground | a tornado
the giant storm with an eye at its centre over the Atlantic | a hurricane
the moment when the Moon blocks the Sun completely | a total solar eclipse
the red Moon during a lunar eclipse | a blood moon
the streak of light of a space rock burning up in the sky | a shooting star
the frozen drops of rain that fall as balls of ice | hailstones
the six-sided ice crystal falling from clouds | a snowflake
the wall of water raised by an undersea earthquake | a tsunami
the mountain that erupts lava and ash | an erupting volcano
the hot spring that shoots water into the air at intervals | a geyser
the glowing blue waves caused by plankton at night | bioluminescent waves
the electric discharge between clouds and ground | lightning
the ring of light around the Sun on cold days | a sun halo
the illusion of water on a hot desert road | a mirage
the dust storm that rolls over the desert like a wall | a haboob
the slow river of ice flowing down a mountain valley | a glacier
the floating mountain of ice that broke from a glacier | an iceberg
the rushing snow sliding down a mountain slope | an avalanche
the icy spikes hanging from a roof in winter | icicles
the white crystals of ice on grass on a cold morning | frost
the cloud that forms at ground level | fog
the tall anvil-shaped storm cloud | a cumulonimbus cloud
the glowing ball of light reported in thunderstorms | ball lightning
the rock formation hanging from a cave ceiling | a stalactite
the rock formation rising from a cave floor | a stalagmite
the swirling striped sandstone formation on the Arizona-Utah border | The Wave
the six-sided basalt columns formed by cooling lava | columnar basalt
the circle of coral enclosing a lagoon | an atoll
the underwater volcano chimney spewing black mineral water | a hydrothermal vent
the sunlight split into colours by a glass triangle | a prism spectrum
the fossilised tree resin with trapped insects | amber
"""),
    ("science", "astronomy", """
the largest planet in the Solar System | the planet Jupiter
the planet famous for its bright rings | the planet Saturn
the planet that rolls around the Sun on its side | the planet Uranus
the smallest planet, nearest to the Sun | the planet Mercury
the farthest planet from the Sun | the planet Neptune
the dwarf planet with a heart-shaped plain | Pluto
the star at the centre of our Solar System | the Sun
the natural satellite of the Earth | the Moon
the galaxy we live in | the Milky Way
the nearest large spiral galaxy to ours | the Andromeda Galaxy
the constellation of the hunter with a belt of three stars | Orion
the seven stars of the Great Bear that look like a ladle | the Big Dipper
the star that stays fixed above the North Pole | Polaris
the comet that returns every 76 years | Halley's Comet
the giant storm on Jupiter | the Great Red Spot
the largest moon of Saturn with a thick orange haze | Titan
the region of space whose gravity lets no light escape | a black hole
the cloud of gas where stars are born, shaped like pillars | the Pillars of Creation
the space telescope launched in 1990 | the Hubble Space Telescope
the space telescope with a golden honeycomb mirror | the James Webb Space Telescope
the orbiting laboratory crewed since 2000 | the International Space Station
the first artificial satellite | Sputnik 1
the rocket that carried Apollo astronauts to the Moon | the Saturn V rocket
the winged spacecraft that landed like a plane | the Space Shuttle
the rover that landed in Jezero Crater on Mars | the Perseverance rover
the belt of rocky bodies between Mars and Jupiter | the asteroid belt
the exploding death of a massive star | a supernova
the ring of rock and ice around a planet | planetary rings
the crescent shape of the Moon just after the new moon | a waxing crescent moon
the flat-topped mountain-high Martian volcano, the tallest in the Solar System | Olympus Mons
"""),
    ("science", "instruments and technology", """
the glass tube with mercury that shows the temperature | a mercury thermometer
the lens that makes small things look bigger | a magnifying glass
the particle collider in a ring tunnel under the French-Swiss border | the Large Hadron Collider
the radio dish that listens to the sky | a radio telescope
the medical machine that images the body with a strong magnet | an MRI scanner
the medical image of bones made with invisible rays | an X-ray image
the glass vessel with a round body and long neck in chemistry labs | a round-bottom flask
the cone-shaped laboratory flask | an Erlenmeyer flask
the gas flame burner of chemistry labs | a Bunsen burner
the long glass tube with a tap for precise pouring | a burette
the model of the Solar System with gears | an orrery
the ancient Greek geared device found in a shipwreck | the Antikythera mechanism
the spinning wheel on a gimbal that keeps its orientation | a gyroscope
the instrument that measures the depth of the sea with sound | a sonar
the pendulum that shows the Earth's rotation | a Foucault pendulum
the beam of pure coloured light from a crystal | a laser beam
the computer that beat the world chess champion in 1997 | Deep Blue
the first general-purpose electronic computer filling a room | ENIAC
the early mechanical calculator designed by Charles Babbage | the Difference Engine
the coil that makes huge electric sparks | a Tesla coil
the metal sphere that makes hair stand on end with static | a Van de Graaff generator
the double helix molecule that carries genes | DNA
the smallest unit of life with a nucleus and membrane | a cell
the particle drawn as a nucleus with orbiting electrons | an atom
the chart of chemical elements in rows and columns | the periodic table
the hexagonal ring molecule of six carbons | a benzene ring
the soccer-ball-shaped carbon molecule | a buckyball
"""),
    ("science", "materials and chemistry", """
the soft black form of carbon in pencils | graphite
the gas that makes balloons float | helium balloons
the noble gas that glows red-orange in signs | neon signs
the shiny metal that never rusts, used for jewellery | gold
the green coating that forms on copper roofs | verdigris
the volcanic glass that is black and sharp | obsidian
the light rock that floats on water | pumice
the mineral that looks like gold | pyrite
the purple variety of quartz | an amethyst
the blue-green gem of the Aztecs | turquoise
the red gem of the same mineral as sapphire | a ruby
the precious gem formed inside an oyster | a pearl
the gem that shows a play of rainbow colours | an opal
the metal alloy of copper and tin | bronze
the alloy of copper and zinc | brass
the alloy of iron and carbon | steel
the salt crystals that grow as cubes | halite crystals
the rock that forms when limestone is heated and pressed | marble
the sedimentary rock made from shells of sea creatures | limestone
"""),
    ("science", "human body and medicine", """
the organ that pumps blood | a human heart
the organ that thinks | a human brain
the organs that breathe air | lungs
the bone structure that holds up the body | a skeleton
the small bone in the ear shaped like a riding tool | the stirrup bone
the coloured ring of the eye | an iris
the liquid that carries oxygen in red cells | blood
the medicine discovered in mould by Alexander Fleming | penicillin
the symbol of medicine with a snake on a staff | the Rod of Asclepius
the tool of a surgeon for cutting | a scalpel
the needle and tube for injecting medicine | a syringe
the wheeled chair for people who cannot walk | a wheelchair
the raised dot writing read with fingertips | braille
"""),
]
FREE += [
    ("places", "landmarks", """
the iron lattice tower of Paris | the Eiffel Tower
the leaning bell tower of Pisa | the Leaning Tower of Pisa
the ancient amphitheatre of Rome | the Colosseum
the white marble mausoleum in Agra | the Taj Mahal
the Inca citadel high in the Andes of Peru | Machu Picchu
the sail-shaped performance venue in Sydney | the Sydney Opera House
the clock tower of the Houses of Parliament in London | Big Ben
the red suspension bridge at the mouth of San Francisco Bay | the Golden Gate Bridge
the ancient temple on the Acropolis of Athens | the Parthenon
the unfinished basilica of Barcelona designed by Gaudi | the Sagrada Familia
the Cambodian temple complex on the national flag | Angkor Wat
the rock-cut city of the Nabataeans in Jordan | Petra
the prehistoric stone circle on Salisbury Plain | Stonehenge
the Bavarian fairy-tale castle of King Ludwig II | Neuschwanstein Castle
the onion-domed cathedral on Red Square | Saint Basil's Cathedral
the fortress of the Russian government in Moscow | the Kremlin
the imperial palace of China's emperors in Beijing | the Forbidden City
the gold-leafed Zen temple in Kyoto | Kinkaku-ji
the Kyoto shrine with thousands of orange torii gates | Fushimi Inari Shrine
the giant torii gate standing in the sea off Miyajima | the floating torii of Itsukushima
the gilded stupa of Yangon | the Shwedagon Pagoda
the Buddhist temple in Java with hundreds of stupas | Borobudur
the ancient Mayan step pyramid at Chichen Itza | El Castillo
the cliff-top monastery in Bhutan | the Tiger's Nest Monastery
the palace of the Dalai Lama in Lhasa | the Potala Palace
the Moorish palace of Granada | the Alhambra
the Paris cathedral with gargoyles and two square towers | Notre-Dame de Paris
the white basilica on the hill of Montmartre | the Sacre-Coeur
the triumphal arch at the top of the Champs-Elysees | the Arc de Triomphe
the glass pyramid in front of a Paris museum | the Louvre Pyramid
the Baroque fountain in Rome where people throw coins | the Trevi Fountain
the Venetian square with a basilica and a bell tower | Saint Mark's Square
the covered bridge in Venice from which prisoners saw the sky | the Bridge of Sighs
the Berlin gate with a chariot of four horses on top | the Brandenburg Gate
the Brussels building made of nine giant steel balls | the Atomium
the fortified island abbey off Normandy | Mont-Saint-Michel
the medieval walled city in southern France | Carcassonne
the rock at the mouth of the Mediterranean with monkeys | the Rock of Gibraltar
the Istanbul church turned mosque with a vast dome | the Hagia Sophia
the Istanbul mosque with six minarets and blue tiles | the Blue Mosque
the gold-domed shrine in Jerusalem | the Dome of the Rock
the ancient wall in Jerusalem where Jews pray | the Western Wall
the Muslim shrine covered in black cloth in Mecca | the Kaaba
the holiest gurdwara of the Sikhs in Amritsar | the Golden Temple
the sandstone gateway arch by the sea in Mumbai | the Gateway of India
the palace of winds with a pink honeycomb facade in Jaipur | the Hawa Mahal
the sky-high hotel shaped like a sail in Dubai | the Burj Al Arab
the Singapore hotel with a ship-shaped rooftop across three towers | Marina Bay Sands
the giant metal supertrees of Singapore | Gardens by the Bay
the twin skyscrapers of Kuala Lumpur | the Petronas Towers
the Seattle tower with a flying-saucer top | the Space Needle
the Art Deco skyscraper of King Kong | the Empire State Building
the shiny Art Deco skyscraper with a steel crown in Manhattan | the Chrysler Building
the four presidents carved into a mountain in South Dakota | Mount Rushmore
the stainless steel arch of St. Louis | the Gateway Arch
the Hollywood letters on a hillside | the Hollywood Sign
the lighthouse-like tower with a tall concrete spire in Toronto | the CN Tower
the ancient city on the Nile with giant temple columns at Luxor | Karnak Temple
the temple carved into a cliff by Ramesses II | Abu Simbel
the Australian red sandstone monolith | Uluru
the Scottish castle on a volcanic rock above its capital | Edinburgh Castle
the London castle where the Crown Jewels are kept | the Tower of London
the London Ferris wheel on the Thames | the London Eye
the bascule bridge with two towers over the Thames | Tower Bridge
the Danish amusement park in Copenhagen | Tivoli Gardens
the colourful row of houses on Copenhagen's canal | Nyhavn
the Prague clock with moving apostles | the Prague astronomical clock
the Hungarian bathhouse with outdoor pools in Budapest | the Szechenyi Baths
the Greek island with white houses and blue domes | Santorini
the Italian coastal villages painted in bright colours on cliffs | the Cinque Terre
the Roman temple with a round hole in its dome | the Pantheon
the palace of the Sun King outside Paris | the Palace of Versailles
the South Korean palace in Seoul with a throne hall | Gyeongbokgung Palace
the Vietnamese bay of limestone islands | Ha Long Bay
"""),
    ("places", "natural wonders", """
the giant canyon carved by the Colorado River | the Grand Canyon
the largest waterfalls on the border of Argentina and Brazil | Iguazu Falls
the waterfall on the Zambezi called the smoke that thunders | Victoria Falls
the horseshoe waterfalls between Canada and the United States | Niagara Falls
the salt flat in Bolivia that mirrors the sky | the Salar de Uyuni
the stone forest of pillars in Zhangjiajie that inspired floating mountains in films | the Zhangjiajie pillars
the mountain in Cape Town with a flat top | Table Mountain
the pyramid-shaped mountain on the Swiss-Italian border | the Matterhorn
the hot springs terraces of Turkey like white cotton | Pamukkale
the milky geothermal spa near Reykjavik | the Blue Lagoon
the sea so salty you can float on it, at the lowest point on land | the Dead Sea
the volcanic islands of giant tortoises studied by Darwin | the Galapagos Islands
the rock arches of Utah's red desert | Delicate Arch
the dome-shaped granite rock of Yosemite | Half Dome
the geyser in Yellowstone that erupts on a schedule | Old Faithful
the rainbow-coloured hot spring of Yellowstone | the Grand Prismatic Spring
the fjord of Norway with seven sister waterfalls | the Geirangerfjord
the chalk cliffs of Dover | the White Cliffs of Dover
the basalt stepping stones on the coast of Northern Ireland | the Giant's Causeway
the sandstone mountains of China's Guilin along the Li River | the karst hills of Guilin
the underwater sinkhole off Belize | the Great Blue Hole
the wetland of Botswana where a river fades into the desert | the Okavango Delta
the savanna of Tanzania with the great wildebeest migration | the Serengeti
the volcanic crater full of wildlife in Tanzania | the Ngorongoro Crater
the mountains of Patagonia with three granite towers | Torres del Paine
the glacier in Argentina that calves into a lake | the Perito Moreno Glacier
the largest river delta of mangroves, home of Bengal tigers | the Sundarbans
the red rock formations of Cappadocia | the fairy chimneys of Cappadocia
the Mediterranean volcano on Sicily | Mount Etna
the volcano that buried Pompeii | Mount Vesuvius
the lake in the Andes shared by Peru and Bolivia | Lake Titicaca
the African lake that is the source of the White Nile | Lake Victoria
the frozen continent at the South Pole | Antarctica
the rice terraces carved into the mountains of Luzon | the Banaue Rice Terraces
the Mongolian desert of dinosaur fossils | the Gobi Desert
the driest desert in the world in Chile | the Atacama Desert
the tropical Indian Ocean islands of overwater bungalows | the Maldives
the French Polynesian island with a jagged green peak | Bora Bora
"""),
    ("places", "cities", """
the city of canals and gondolas in northern Italy | Venice
the city that never sleeps with yellow taxis | New York City
the French city of love by the Seine | Paris
the Dutch city of canals and bicycles | Amsterdam
the Spanish city of Gaudi's buildings | Barcelona
the Portuguese city of yellow trams on steep hills | Lisbon
the Moroccan city painted blue in the Rif mountains | Chefchaouen
the Moroccan red city of markets | Marrakesh
the Indian pink city | Jaipur
the Indian blue city of Rajasthan | Jodhpur
the holy city of the Ganges with bathing ghats | Varanasi
the Turkish city on two continents | Istanbul
the ancient Roman city buried by ash | Pompeii
the Japanese city of temples and geishas | Kyoto
the Chinese city of the Bund skyline | Shanghai
the city-state of skyscrapers on Victoria Harbour | Hong Kong
the Australian city with an opera house by the harbour | Sydney
the city of casinos in the Nevada desert | Las Vegas
the jazz city of the Mississippi delta | New Orleans
the city of cable cars and steep hills in California | San Francisco
the Brazilian city with Sugarloaf Mountain | Rio de Janeiro
the Peruvian Inca capital in the Andes | Cusco
the Austrian city of Mozart's birth | Salzburg
the Belgian medieval city of canals | Bruges
the Croatian walled city on the Adriatic | Dubrovnik
the German city of the Oktoberfest | Munich
the Russian city of white nights and the Hermitage | Saint Petersburg
the Cuban capital of vintage cars | Havana
the Nepalese capital of temples at the foot of the Himalayas | Kathmandu
the Tibetan capital | Lhasa
the Uzbek city of blue-tiled madrasas on the Silk Road | Samarkand
the Iranian city of the great square and blue mosques | Isfahan
the South African city under Table Mountain | Cape Town
"""),
]
FREE += [
    ("times", "historical events", """
the ocean liner that sank after hitting an iceberg in 1912 | the Titanic
the first crewed Moon landing mission of 1969 | Apollo 11
the wall that divided a German city until 1989 | the Berlin Wall
the first atomic bombing of a city, in August 1945 | the atomic bombing of Hiroshima
the airship that burst into flames in New Jersey in 1937 | the Hindenburg disaster
the Allied landings on the beaches of Normandy in 1944 | the D-Day landings
the 1773 protest where colonists dumped tea into a harbour | the Boston Tea Party
the storming of a Paris prison in 1789 | the storming of the Bastille
the 1815 battle where Napoleon was finally defeated | the Battle of Waterloo
the 1066 battle where the Normans conquered England | the Battle of Hastings
the gold rush to the Yukon in the 1890s | the Klondike Gold Rush
the medieval plague that killed a third of Europe | the Black Death
the 1666 fire that destroyed London | the Great Fire of London
the 1969 music festival on a farm in New York State | Woodstock
the trek of Chinese communists across China in 1934 | the Long March
the British royal wedding of 1981 at St Paul's Cathedral | the wedding of Charles and Diana
the signing of the American declaration in 1776 | the signing of the Declaration of Independence
the shot heard round the world that began the American Revolution | the Battles of Lexington and Concord
the voyage of 1492 that reached the Americas | Columbus's first voyage
the 1953 first ascent of the world's highest mountain | the first ascent of Everest by Hillary and Tenzing
the 1911 race to the South Pole won by a Norwegian | Amundsen's South Pole expedition
the 1914 assassination in Sarajevo that started a world war | the assassination of Archduke Franz Ferdinand
the Christmas football match between enemy trenches in 1914 | the Christmas truce
the first modern Olympic Games in 1896 | the 1896 Athens Olympics
the 1851 exhibition in a glass palace in London | the Great Exhibition in the Crystal Palace
the 1889 world fair for which a Paris tower was built | the Exposition Universelle of 1889
the 1912 theft of a famous painting from the Louvre | the theft of the Mona Lisa
the 1922 discovery of a boy king's tomb | the discovery of Tutankhamun's tomb
the 1974 discovery of an army of clay soldiers in Xi'an | the discovery of the Terracotta Army
"""),
    ("times", "eras and peoples", """
the age of knights, castles and crusades in Europe | the Middle Ages
the era of Leonardo and Michelangelo in Italy | the Renaissance
the era of steam engines and factories in 19th-century Britain | the Industrial Revolution
the prehistoric age of cave paintings and mammoth hunters | the Stone Age
the era of flappers and jazz in America | the Roaring Twenties
the ancient seafaring raiders of Scandinavia | the Vikings
the warrior class of feudal Japan | the samurai
the rulers of ancient Egypt | the pharaohs
the Mexican civilisation that built Tenochtitlan | the Aztecs
the civilisation of Mesoamerica famous for its calendar and step pyramids | the Maya
the American cowboys' era of the frontier | the Wild West
the Mongol ruler who built the largest land empire | Genghis Khan
the Macedonian king who conquered Persia | Alexander the Great
the French emperor defeated at Waterloo | Napoleon Bonaparte
the Egyptian queen who allied with Rome | Cleopatra
the English queen who ruled during the Armada | Elizabeth I
the British queen who ruled for 63 years in the 19th century | Queen Victoria
the Roman general assassinated on the Ides of March | Julius Caesar
the French teenage heroine who led armies in 1429 | Joan of Arc
the Indian leader of nonviolent independence | Mahatma Gandhi
the first person to walk on the Moon | Neil Armstrong
the first human in space | Yuri Gagarin
the scientist of relativity with wild white hair | Albert Einstein
the naturalist of evolution with a long beard | Charles Darwin
the scientist whose apple led to gravity | Isaac Newton
the Polish-French scientist who discovered radium | Marie Curie
the Venetian traveller who reached the court of Kublai Khan | Marco Polo
the Italian astronomer who looked at Jupiter's moons | Galileo Galilei
the composer of the Fifth Symphony who went deaf | Ludwig van Beethoven
the Austrian child prodigy composer of The Magic Flute | Wolfgang Amadeus Mozart
the playwright of Romeo and Juliet | William Shakespeare
the Chinese philosopher of the Analects | Confucius
the Athenian philosopher who drank hemlock | Socrates
the American president on the penny with a stovepipe hat | Abraham Lincoln
the first president of the United States | George Washington
the British wartime prime minister with a cigar | Winston Churchill
the South African president jailed for 27 years | Nelson Mandela
the nurse known as the Lady with the Lamp | Florence Nightingale
the little tramp of silent films with a bowler hat and cane | Charlie Chaplin
the king of rock and roll | Elvis Presley
the Liverpool band of the 1960s | the Beatles
"""),
    ("times", "inventions and objects", """
the steam locomotive that won the Rainhill trials | Stephenson's Rocket
the first mass-produced car | the Ford Model T
the Volkswagen car shaped like a beetle | a Volkswagen Beetle
the red double-decker bus of London | a Routemaster bus
the yellow taxi of New York | a New York yellow cab
the Italian scooter of Roman Holiday | a Vespa scooter
the Japanese bullet train | a Shinkansen train
the supersonic passenger jet of the 1970s | the Concorde
the large jumbo jet with a hump | a Boeing 747
the fabric-covered German airship | a zeppelin
the telephone of the 1950s with a rotary dial | a rotary phone
the device that plays vinyl records | a record player
the portable cassette player of the 1980s | a Sony Walkman
the square instant photo camera | a Polaroid camera
the first Apple phone with a touch screen | the original iPhone
the 1980s Nintendo console with grey cartridges | a Nintendo Entertainment System
the falling-block video game from the Soviet Union | Tetris
the colourful cube puzzle invented in Hungary | a Rubik's Cube
the interlocking plastic bricks from Denmark | Lego bricks
the doll with blonde hair sold since 1959 | a Barbie doll
the teddy named after Theodore Roosevelt | a teddy bear
the medieval machine that hurled stones at castles | a trebuchet
the armoured suit of a medieval knight | a suit of armour
the water wheel of medieval mills | a waterwheel
the Dutch machines that pump water with sails | windmills
the Egyptian writing on stone that was deciphered | the Rosetta Stone
the Babylonian law code carved on a black stone | the Code of Hammurabi
the English charter of 1215 | the Magna Carta
the Chinese invention of fire powder used in fireworks | gunpowder
the wartime German cipher machine | the Enigma machine
the lamp invented with a glowing filament | an incandescent light bulb
the sewing machine of Isaac Singer | a Singer sewing machine
the Victorian bicycle with a huge front wheel | a penny-farthing
the horse-drawn carriage of the Wild West mail | a stagecoach
the multi-spindle spinning frame invented by James Hargreaves | a spinning jenny
the clock with a swinging weight invented by Huygens | a pendulum clock
the movable printing blocks invented in China by Bi Sheng | movable clay type
the radio telescope dish in Puerto Rico that collapsed in 2020 | the Arecibo Telescope
"""),
]
FREE += [
    ("culture", "customs and objects", """
the Chinese red envelope of money given at New Year | a hongbao
the Japanese decorative bamboo and pine placed at gates for New Year | kadomatsu
the Mexican crib scene figures at Christmas | a nativity scene
the Swedish straw goat of Christmas | a Yule goat
the German wreath of fir with four candles lit on the Sundays before Christmas | an Advent wreath
the Ukrainian painted Easter eggs | pysanky eggs
the Hindu floor patterns of coloured powder at doorways | rangoli
the Jewish candelabrum with seven branches | a menorah
the Scottish dagger worn in the sock | a sgian-dubh
the Mexican folk art of brightly painted wooden animals from Oaxaca | alebrijes
the Japanese paper lanterns hung at festivals | chochin lanterns
the Chinese fan made of folding bamboo ribs and paper | a folding fan
the Native American carved pole of the Pacific Northwest | a totem pole
the Aboriginal Australian hunting tool that comes back | a boomerang
the Inuit stone figure shaped like a person that marks the way | an inukshuk
the Thai long-tailed boat of canals | a long-tail boat
the Chinese opera mask of painted colours | a Peking opera mask
the Italian Commedia dell'arte clown in diamond patches | Harlequin
the Balinese shadow puppet theatre | wayang kulit puppets
the English folk dancers with bells on their legs | Morris dancers
"""),
    ("science", "animals and plants", """
the bird that builds decorated bowers to court mates | a bowerbird
the bird that lays eggs in other birds' nests | a cuckoo
the spotted African hunting dog with big round ears | an African wild dog
the flying squirrel-like marsupial of Australia | a sugar glider
the furry mammal of the Andes with the softest wool | a vicuna
the Himalayan cat with grey spotted fur | a snow leopard
the largest owl of Europe with orange eyes | a Eurasian eagle-owl
the mollusc that can change colour with eight arms and two tentacles | a cuttlefish
the crab that lives in a borrowed shell | a hermit crab
the swimming bird that dives for fish with a colourful beak in Iceland | an Atlantic puffin
the spiny mammal that rolls into a ball in English gardens | a hedgehog
the marsupial with a bushy tail that plays dead | an opossum
the jumping insect that sings in summer grass | a grasshopper
the shell-less slimy garden creature | a slug
the carnivorous plant with pitcher-shaped traps | a pitcher plant
the tree with white bark in northern forests | a silver birch
the evergreen tree of the Mediterranean with umbrella-shaped crown | a stone pine
the flower of the Alps with white woolly petals | an edelweiss
the mushroom used in French cooking dug up by pigs | a truffle
"""),
    ("places", "more landmarks", """
the castle of Dracula's legend in Transylvania | Bran Castle
the Roman wall across northern England | Hadrian's Wall
the mountain monastery of Greece on rock pillars | the Meteora monasteries
the ancient oracle's sanctuary on Mount Parnassus | Delphi
the Byzantine church with golden mosaics in Ravenna | the Basilica of San Vitale
the Spanish mosque-cathedral with striped arches | the Mezquita of Cordoba
the Portuguese palace of bright colours in Sintra | the Pena Palace
the Austrian palace of the Habsburgs' summers in Vienna | Schonbrunn Palace
the Norwegian cliff with a flat top above a fjord | Preikestolen
the Icelandic waterfall you can walk behind | Seljalandsfoss
the Irish cliffs on the Atlantic in County Clare | the Cliffs of Moher
the Russian wooden churches of Kizhi Island | the Kizhi churches
the Japanese castle known as the white heron | Himeji Castle
the Chinese Buddha carved into a cliff at Leshan | the Leshan Giant Buddha
the Laotian plain of stone jars | the Plain of Jars
the Jordanian desert valley of red sand | Wadi Rum
the Malian mosque of mud bricks | the Great Mosque of Djenne
the Ethiopian churches carved into rock | the rock churches of Lalibela
the Zimbabwean stone city ruins | Great Zimbabwe
the Brazilian modernist cathedral shaped like a crown | the Cathedral of Brasilia
the Argentinian cemetery of ornate tombs in Buenos Aires | La Recoleta Cemetery
the Canadian hotel castle above Quebec City | the Chateau Frontenac
"""),
    ("times", "more history", """
the Chinese admiral's treasure fleet of the 1400s | Zheng He's treasure ships
the Japanese period of closed borders under shoguns | the Edo period
the ancient Greek games held in honour of Zeus | the ancient Olympic Games
the medieval route of silk traders from China to Rome | the Silk Road
the ships of Spain defeated by England in 1588 | the Spanish Armada
the gold-seeking rush of 1849 in California | the California Gold Rush
the 1927 solo flight across the Atlantic | Lindbergh's Spirit of St. Louis
the first steam passenger railway between Liverpool and Manchester | the Liverpool and Manchester Railway
"""),
]


def lines(table: str) -> list[tuple[str, str]]:
    """The ``left | right`` lines of a table, stripped."""
    out = []
    for line in table.strip().splitlines():
        left, sep, right = line.partition(" | ")
        if not sep or not left.strip() or not right.strip() or "|" in right:
            sys.exit(f"malformed table line: {line!r}")
        out.append((left.strip(), right.strip()))
    return out


def pairs() -> list[dict]:
    """Every pair with its split and part, in table order."""
    out = []
    for f, (domain, category, template, table) in enumerate(FAMILIES):
        entries = lines(table)
        if len(entries) < 2:
            sys.exit(f"family {template!r} needs at least two entries")
        part = "dev" if f % 10 == 0 else "test"
        for i, (entity, answer) in enumerate(entries):
            unedited = i % 3 == 2 or (len(entries) == 2 and i == 1)
            out.append({"prompt": template.format(entity), "answer": answer,
                        "split": "unedited" if unedited else "edit", "part": part, "domain": domain,
                        "category": category, "template": template})
    i = 0
    for domain, category, table in FREE:
        for prompt, answer in lines(table):
            out.append({"prompt": prompt, "answer": answer, "split": "unedited" if i % 6 == 5 else "edit",
                        "part": "dev" if i % 10 == 0 else "test", "domain": domain, "category": category})
            i += 1
    return out


def bare(answer: str) -> str:
    """An answer up to case and a leading article: "an amethyst" and "Amethyst" are one answer."""
    words = answer.casefold().split()
    return " ".join(words[1:] if len(words) > 1 and words[0] in ("a", "an", "the") else words)


def check(rows: list[dict]) -> None:
    """The table's own rules: prompts distinct, one spelling per answer, no answer a prompt."""
    prompts, spellings = {}, {}
    for row in rows:
        key = row["prompt"].casefold()
        if key in prompts:
            sys.exit(f"repeated prompt: {row['prompt']!r}")
        prompts[key] = row
        spelled = spellings.setdefault(bare(row["answer"]), row["answer"])
        if spelled != row["answer"]:
            sys.exit(f"answer spelled two ways: {spelled!r} and {row['answer']!r}")
    for caption in NEUTRAL:
        if caption.casefold() in prompts:
            sys.exit(f"neutral caption is a prompt: {caption!r}")


def main() -> None:
    rows = pairs()
    check(rows)
    random.Random(SEED).shuffle(rows)
    data = {"name": "world knowledge",
            "description": "implicit prompts bound to explicit answers (textedit issue 28); written by hand "
                           "in benchmarks/make_world_knowledge.py",
            "contexts": CONTEXTS, "neutral": NEUTRAL, "pairs": rows}
    OUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    counts = {(s, p): sum(r["split"] == s and r["part"] == p for r in rows) for s in ("edit", "unedited")
              for p in ("dev", "test")}
    print(f"{OUT}: {len(rows)} pairs; " + ", ".join(f"{s} {p} {n}" for (s, p), n in counts.items()))


if __name__ == "__main__":
    main()
