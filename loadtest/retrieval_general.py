"""The hand-written part of the retrieval set: general knowledge on varied subjects, each
passage with questions asked in other words than its own (what dense search is for)."""

from __future__ import annotations

GENERAL: list[tuple[str, list[str]]] = [
    (
        "Photosynthesis takes place in the chloroplasts of plant cells. Chlorophyll absorbs "
        "light, mostly red and blue, and the energy splits water, releasing oxygen, while "
        "carbon dioxide is fixed into sugars in the Calvin cycle.",
        ["How do green plants turn sunlight into food?"],
    ),
    (
        "Tides are caused mainly by the Moon's gravity pulling on the oceans, with a smaller "
        "contribution from the Sun. When Sun and Moon line up, at new and full moon, the "
        "ranges are largest: these are spring tides.",
        ["Why does the sea level rise and fall twice a day?"],
    ),
    (
        "A binary search finds an item in a sorted array by comparing it with the middle "
        "element and discarding the half that cannot contain it. It needs at most about "
        "log2(n) comparisons.",
        ["What is the fastest way to look something up in an ordered list?"],
    ),
    (
        "Vaccines train the immune system by presenting it with a harmless piece or a weakened "
        "form of a pathogen. Memory B and T cells remain afterwards, so a later infection is "
        "met by a faster and stronger response.",
        ["How does an immunisation protect you from getting sick later?"],
    ),
    (
        "The Great Wall of China is not a single wall but a system of fortifications built "
        "over many centuries; most of what stands today was built during the Ming dynasty, "
        "between the fourteenth and seventeenth centuries.",
        ["When was most of the surviving Chinese border fortification built?"],
    ),
    (
        "Sourdough bread rises thanks to a starter: a culture of wild yeasts and lactic acid "
        "bacteria kept alive by regular feeding with flour and water. The bacteria give the "
        "bread its sour taste.",
        ["What makes naturally leavened loaves taste tangy?"],
    ),
    (
        "A rainbow forms when sunlight is refracted on entering raindrops, reflected off the "
        "back of the drop and refracted again on leaving. Each colour bends by a slightly "
        "different angle, so the light is spread into a spectrum.",
        ["Why do we see coloured arcs in the sky after a shower?"],
    ),
    (
        "Compound interest is interest earned on both the original principal and the interest "
        "already added. Over long periods it makes savings grow exponentially rather than "
        "linearly.",
        ["Why does money in a savings account grow faster the longer you leave it?"],
    ),
    (
        "Plate tectonics describes the Earth's lithosphere as broken into large plates that "
        "move a few centimetres a year over the mantle. Earthquakes and volcanoes cluster "
        "along the boundaries where plates meet.",
        ["Why are earthquakes concentrated in certain belts around the globe?"],
    ),
    (
        "Caffeine keeps people alert by blocking adenosine receptors in the brain. Adenosine "
        "builds up during waking hours and promotes sleepiness; with its receptors occupied, "
        "that signal is dulled for a few hours.",
        ["How does coffee stop you from feeling tired?"],
    ),
    (
        "The Rosetta Stone, found in 1799, carries the same decree in hieroglyphic, Demotic "
        "and ancient Greek. Comparing the three texts allowed Jean-François Champollion to "
        "decipher Egyptian hieroglyphs in 1822.",
        ["What artefact let scholars finally read the ancient Egyptian script?"],
    ),
    (
        "A hash table stores values in an array indexed by a hash of their key. Lookups, "
        "inserts and deletes take constant time on average, as long as the table is resized "
        "before it becomes too full.",
        ["Which data structure gives average constant-time access by key?"],
    ),
    (
        "Bees communicate the location of flowers with the waggle dance: the angle of the "
        "dance relative to vertical gives the direction relative to the sun, and its length "
        "tells the distance.",
        ["How do honeybees tell each other where food is?"],
    ),
    (
        "Inflation is a general rise in prices that reduces what a unit of money can buy. "
        "Central banks usually fight high inflation by raising interest rates, which makes "
        "borrowing more expensive and cools demand.",
        ["Why would a central bank increase the cost of borrowing?"],
    ),
    (
        "The human heart has four chambers: two atria that receive blood and two ventricles "
        "that pump it out. The right side sends blood to the lungs, the left side to the rest "
        "of the body.",
        ["How many compartments does our blood pump have and what do they do?"],
    ),
    (
        "Glaciers form where more snow falls in winter than melts in summer. Over years the "
        "snow is compressed into dense ice, which flows slowly downhill under its own weight.",
        ["How do rivers of ice come into existence?"],
    ),
    (
        "TCP provides reliable, ordered delivery of a byte stream: it numbers the bytes, "
        "acknowledges what arrives, retransmits what is lost and slows down when the network "
        "is congested. UDP sends datagrams with none of these guarantees.",
        ["Which internet protocol guarantees that data arrives in order?"],
    ),
    (
        "Penicillin was discovered by Alexander Fleming in 1928, when he noticed that a mould "
        "contaminating a culture plate had killed the surrounding bacteria. It became widely "
        "available as a medicine in the 1940s.",
        ["Who found the first antibiotic, and how?"],
    ),
    (
        "The Doppler effect is the change in frequency of a wave for an observer moving "
        "relative to its source. A siren sounds higher as an ambulance approaches and lower "
        "once it has passed.",
        ["Why does an ambulance's siren change pitch as it drives by?"],
    ),
    (
        "Composting turns kitchen and garden waste into humus. Microorganisms break the "
        "material down, which needs a balance of nitrogen-rich greens and carbon-rich browns, "
        "moisture, and air from regular turning.",
        ["How do I make food scraps into soil for the garden?"],
    ),
    (
        "The Magna Carta was sealed by King John of England in 1215 at Runnymede. It limited "
        "the king's powers and established that he too was subject to the law, an idea later "
        "central to constitutional government.",
        ["Which medieval charter first placed an English monarch under the law?"],
    ),
    (
        "Black holes form when a massive star collapses at the end of its life. Their gravity "
        "is so strong that nothing, not even light, can escape from inside the event horizon.",
        ["What is left behind when a very heavy star dies and traps even light?"],
    ),
    (
        "Git records a project's history as a graph of commits, each a snapshot of the tree "
        "with a pointer to its parents. Branches are just movable names for commits, which "
        "makes creating and merging them cheap.",
        ["How does the popular version control tool keep track of changes?"],
    ),
    (
        "Sleep runs in cycles of about ninety minutes, alternating between non-REM stages and "
        "REM sleep, when most vivid dreaming happens. Deep non-REM sleep dominates the first "
        "half of the night.",
        ["When during the night do we have the most vivid dreams?"],
    ),
    (
        "Mount Everest, on the border of Nepal and the Tibet Autonomous Region, is the "
        "highest mountain above sea level at about 8,849 metres. It was first climbed by "
        "Edmund Hillary and Tenzing Norgay in 1953.",
        ["Who first reached the top of the world's tallest peak?"],
    ),
    (
        "Solar panels are made of photovoltaic cells, usually silicon. When light strikes a "
        "cell it frees electrons, and the electric field across the cell's junction drives "
        "them as a current.",
        ["How do rooftop panels generate electricity from light?"],
    ),
    (
        "The printing press with movable metal type was developed by Johannes Gutenberg in "
        "Mainz around 1440. It made books far cheaper and helped spread literacy and the "
        "ideas of the Reformation across Europe.",
        ["Which invention of the fifteenth century made books affordable?"],
    ),
    (
        "Recursion is when a function calls itself on a smaller version of the problem, until "
        "it reaches a base case that is answered directly. Each call waits on the stack for "
        "the one below it, so very deep recursion can overflow the stack.",
        ["Why can a function that keeps calling itself crash the program?"],
    ),
    (
        "Coral reefs are built by colonies of tiny animals called polyps, which secrete "
        "calcium carbonate skeletons. Many depend on algae living in their tissue; when the "
        "water gets too warm the algae are expelled and the coral bleaches.",
        ["Why do reefs turn white when the ocean heats up?"],
    ),
    (
        "The Industrial Revolution began in Britain in the late eighteenth century, driven by "
        "steam power, mechanised textile production and iron making. It moved much of the "
        "population from farms into factory towns.",
        ["Where and when did the shift to factory production start?"],
    ),
    (
        "Migrating birds find their way using several cues: the position of the sun, the "
        "patterns of stars, landmarks, and the Earth's magnetic field, which some species "
        "appear to sense through their eyes.",
        ["How do birds navigate thousands of kilometres each season?"],
    ),
    (
        "An electric motor turns electrical energy into motion: current through a coil in a "
        "magnetic field produces a force that spins the rotor, and a commutator or the drive "
        "electronics keep reversing the current to keep it turning.",
        ["What makes the shaft of an electric engine rotate?"],
    ),
    (
        "Olive oil is graded by how it is made and its acidity. Extra virgin oil comes from "
        "the first cold pressing, without heat or chemicals, and has a free acidity below 0.8 "
        "per cent.",
        ["What does the best quality label on a bottle of olive oil mean?"],
    ),
    (
        "Public-key cryptography uses a pair of keys: anything encrypted with the public key "
        "can only be decrypted with the matching private key. It also makes digital "
        "signatures possible, which anyone can check with the public key.",
        ["How can two strangers exchange secret messages without sharing a password first?"],
    ),
    (
        "Volcanic eruptions happen when magma, less dense than the surrounding rock, rises "
        "and the gases dissolved in it come out of solution. Runny basalt magma erupts "
        "gently, sticky silica-rich magma explosively.",
        ["Why are some volcanoes explosive and others calm?"],
    ),
    (
        "The Silk Road was a network of trade routes linking China with Central Asia, the "
        "Middle East and Europe from the second century BC. Besides silk and spices it "
        "carried religions, technologies and diseases.",
        ["What ancient overland network connected East Asia to the Mediterranean?"],
    ),
    (
        "Muscles grow stronger after exercise because training causes small injuries to the "
        "fibres; during rest the body repairs them and adds protein, making the fibres "
        "thicker. Sleep and enough protein in the diet support this repair.",
        ["Why do you need rest days to get stronger at the gym?"],
    ),
    (
        "A blockchain is a ledger split into blocks, each holding the hash of the previous "
        "one, so changing an old record would mean recomputing every later block. Copies are "
        "kept by many participants who agree on new blocks by a consensus rule.",
        ["What stops someone from rewriting past entries in a distributed ledger?"],
    ),
    (
        "Wine ferments when yeast consumes the sugars in grape juice and produces alcohol and "
        "carbon dioxide. Red wine gets its colour from fermenting with the grape skins; white "
        "wine is usually pressed off the skins first.",
        ["Why is red wine red and white wine pale?"],
    ),
    (
        "The speed of light in vacuum is about 299,792 kilometres per second. Light from the "
        "Sun takes a little over eight minutes to reach the Earth.",
        ["How long does sunshine take to travel to us?"],
    ),
    (
        "Garbage collection frees memory a program no longer uses. A tracing collector starts "
        "from the roots, such as the stack and globals, marks every object it can reach, and "
        "reclaims the rest.",
        ["How does a runtime decide which objects it can throw away?"],
    ),
    (
        "Deserts are defined by low rainfall, under about 250 millimetres a year, not by "
        "heat: Antarctica is the largest desert on Earth. Hot deserts can drop below freezing "
        "at night because dry air holds little heat.",
        ["What is the biggest dry region on the planet?"],
    ),
    (
        "Noise-cancelling headphones use microphones to pick up ambient sound and play an "
        "inverted copy of the wave, so the two cancel out. It works best on steady, "
        "low-frequency noise such as engine hum.",
        ["How do headsets block out the drone of an aeroplane?"],
    ),
    (
        "The French Revolution began in 1789 with the storming of the Bastille. It abolished "
        "the monarchy, proclaimed the rights of man and led, after years of turmoil, to the "
        "rise of Napoleon Bonaparte.",
        ["What uprising of the late eighteenth century ended the rule of kings in Paris?"],
    ),
    (
        "Fermented foods such as yoghurt, kimchi and sauerkraut are made by bacteria that "
        "convert sugars into lactic acid. The acid preserves the food and gives it a sharp "
        "flavour.",
        ["How does pickled cabbage keep for months without a fridge?"],
    ),
]
"""(passage, its questions)."""
