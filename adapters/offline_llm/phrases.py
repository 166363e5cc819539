"""The offline composer's phrase banks: themes, scenes, breath and body
practices, ritual actions, arrivals and returns.

A passage is written as sentences separated by " | ": the first sentence is
the passage's core, the others are extensions the composer may drop to fit a
short piece. `{slots}` are filled per piece: `{name_}` (", Anna" or ""),
`{name}`, `{light}` (the light of the time of day), `{noun}` (the theme's word),
`{part_of_day}` ("day", "evening", ...).

Rules every line here keeps (the validator checks them on every piece):
statements and identity lines are first person, present tense ("I", "My"; no
"will", "going to"); nothing promises to cure, heal or treat anything.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Theme:
    key: str
    #: The theme's word, as in "carry this {noun} with you".
    noun: str
    keywords: tuple[str, ...]
    #: Capitalised words for titles.
    qualities: tuple[str, ...]
    #: Affirmations anyone can say on a first day.
    statements: tuple[str, ...]
    #: Affirmations that go further inward (medium and deep pieces).
    deep_statements: tuple[str, ...]
    #: "I am someone who..." statements for rituals.
    identity: tuple[str, ...]
    #: Second-person reflections for meditations (sentences split by " | ").
    insights: tuple[str, ...]
    #: "to ..." phrases: what the person chooses in a ritual.
    intentions: tuple[str, ...]
    scenes: tuple[str, ...]
    breaths: tuple[str, ...]
    actions: tuple[str, ...]


THEMES: tuple[Theme, ...] = (
    Theme(
        key="sleep", noun="rest",
        keywords=("sleep", "asleep", "insomnia", "bed", "bedtime", "tired", "exhausted",
                  "restless", "wind down", "dream", "dreams", "night", "nap", "rest"),
        qualities=("Deep Rest", "Soft Night", "Sleep Easy", "Quiet Dark", "Gentle Night",
                   "Slow Tide", "Moonlit Rest"),
        statements=(
            "I let this day be finished.", "My body knows how to rest.",
            "I release the day with every breath out.", "I am safe to let go now.",
            "My thoughts are slowing down.", "I give myself permission to rest.",
            "My bed is a place of comfort and ease.", "I am heavy, warm and relaxed.",
            "I let tomorrow wait until tomorrow.", "My breath is slow and soft.",
            "I have done enough for today.", "I welcome deep, easy sleep.",
            "My mind is quiet and my body is still.", "I sink gently into rest.",
        ),
        deep_statements=(
            "I trust the night to restore me.", "I let go of control and float into sleep.",
            "My worth does not depend on what I finished today.",
            "I rest as deeply as the earth rests in winter.",
            "I am allowed to stop, completely.", "My whole being softens into stillness.",
        ),
        identity=(
            "I am someone who honours my need for rest.",
            "I am someone who lets each day end gently.",
            "I am someone who treats sleep as a gift to myself.",
            "My evenings are calm and unhurried.",
            "I am someone who can put the day down.",
            "I choose rest without guilt.",
        ),
        insights=(
            "There is nothing more to do tonight. | The day is complete, whatever it held.",
            "Sleep comes on its own when it is not chased. | You only need to rest, and let it "
            "find you.",
            "Every out-breath is an invitation to sink a little deeper. | Accept it, one "
            "breath at a time.",
            "Your body has carried you all day. | Now it can put everything down.",
            "Thoughts may drift in, soft and far away. | Let them float past like distant "
            "lights on the water.",
        ),
        intentions=("to let this day be finished", "to rest without guilt",
                    "to welcome a deep and gentle night"),
        scenes=("night_sky", "hearth", "shore", "meadow"),
        breaths=("counted", "sigh", "natural"),
        actions=("candle_breath", "self_embrace", "heart_hands"),
    ),
    Theme(
        key="calm", noun="calm",
        keywords=("calm", "calmer", "anxious", "anxiety", "stress", "stressed", "stressful",
                  "worry", "worried", "worries", "overwhelm", "overwhelmed", "nervous",
                  "tense", "tension",
                  "peace", "peaceful", "relax", "relaxed", "racing thoughts", "busy mind",
                  "settle", "overthinking", "pressure", "panic", "frazzled"),
        qualities=("Still Water", "Steady Ground", "Quiet Mind", "Stillness", "Ease",
                   "Soft Breath", "The Calm Within"),
        statements=(
            "I am calm and steady.", "I breathe in calm and breathe out tension.",
            "I am safe in this moment.", "My breath is my anchor.",
            "I let my shoulders soften.", "I meet this moment with ease.",
            "I have time to pause.", "My mind is settling like water.",
            "I handle one thing at a time.", "I choose peace over worry.",
            "I am grounded and present.", "My body knows how to relax.",
            "I let thoughts pass like clouds.", "I am allowed to slow down.",
        ),
        deep_statements=(
            "I am the stillness beneath every wave.",
            "My calm does not depend on everything being perfect.",
            "I trust myself to meet whatever comes.",
            "I rest in the quiet that is always here.",
            "I am larger than any passing worry.",
            "My peace is something I return to, again and again.",
        ),
        identity=(
            "I am someone who stays steady under pressure.",
            "I am someone who pauses before reacting.",
            "I am someone who brings calm into the room.",
            "I am a calm and grounded person.",
            "My steadiness is a choice I make each day.",
            "I am someone who knows how to return to my breath.",
        ),
        insights=(
            "Calm is not something you have to chase. | It is already here, beneath the "
            "noise, waiting for you to notice it.",
            "Thoughts may still come and go, and that is fine. | You can let them pass "
            "without following them.",
            "Each slow breath tells your body that, right now, you are safe.",
            "You can return to this stillness whenever you need it, simply by slowing your "
            "breath.",
            "The surface may be busy, but underneath, there is a deep and quiet place. | "
            "That place is yours.",
        ),
        intentions=("to meet whatever comes with a steady heart",
                    "to move through this day calmly, one step at a time",
                    "to come back to my breath whenever I need it"),
        scenes=("lake", "river", "shore", "forest", "mountain"),
        breaths=("counted", "sigh", "natural", "box"),
        actions=("grounding_feet", "heart_hands", "open_palms"),
    ),
    Theme(
        key="confidence", noun="confidence",
        keywords=("confidence", "confident", "self-esteem", "self esteem", "believe in myself",
                  "courage", "brave", "interview", "presentation", "speak up", "speaking",
                  "public speaking", "shy", "doubt", "self-doubt", "imposter", "assertive",
                  "stand up for", "audition", "date", "pitch", "meeting"),
        qualities=("Stand Tall", "Quiet Confidence", "Steady Voice", "Bold Heart",
                   "Inner Strength", "Rooted and Ready", "Courage"),
        statements=(
            "I am confident and capable.", "I trust my voice.", "I belong in this room.",
            "My ideas have value.", "I stand tall and breathe deeply.",
            "I am prepared and I am enough.", "I speak clearly and calmly.",
            "I welcome this challenge.", "I believe in what I bring.",
            "My confidence grows each time I show up.", "I am allowed to take up space.",
            "I meet new people with an open heart.", "I handle whatever comes my way.",
            "I am proud of how far I have come.",
        ),
        deep_statements=(
            "My worth is not up for debate.", "I act with courage even when I feel fear.",
            "I trust the person I am becoming.", "I no longer shrink to make others comfortable.",
            "My presence is a gift, not an intrusion.",
            "I am rooted in who I am, whatever others think.",
        ),
        identity=(
            "I am someone who shows up fully.",
            "I am someone who speaks with a steady voice.",
            "I am someone who keeps promises to myself.",
            "I am a person who takes brave steps.",
            "I am someone who trusts my own judgement.",
            "My courage grows every time I use it.",
        ),
        insights=(
            "Confidence is not the absence of nerves. | It is the choice to move forward with "
            "them, breathing steadily.",
            "Remember a time you did something hard and came through it. | That same person "
            "is here now.",
            "You don't need to be perfect to be worth hearing. | You only need to be yourself.",
            "Feel the strength in your spine, the steadiness of your breath. | This is what "
            "confidence feels like from the inside.",
            "You have prepared more than you give yourself credit for. | Let that knowledge "
            "settle in your body.",
        ),
        intentions=("to show up as my whole, confident self",
                    "to speak with a steady voice and an open heart",
                    "to trust what I bring"),
        scenes=("mountain", "sunrise", "forest", "meadow"),
        breaths=("box", "energising", "natural"),
        actions=("power_stance", "grounding_feet", "bow"),
    ),
    Theme(
        key="focus", noun="focus",
        keywords=("focus", "focused", "concentrate", "concentration", "distracted",
                  "distraction", "productive", "productivity", "study", "studying", "exam",
                  "exams", "test", "work", "deadline", "deadlines", "clarity", "clear mind",
                  "discipline", "procrastinate", "procrastination", "attention", "project"),
        qualities=("Clear Mind", "One Thing at a Time", "Sharp and Steady", "Clarity",
                   "Deep Focus", "The Single Flame", "Clear Water"),
        statements=(
            "I focus on one thing at a time.", "My mind is clear and alert.",
            "I give my full attention to what matters now.", "I work with calm focus.",
            "I let distractions pass me by.", "I am prepared and capable.",
            "My attention is steady.", "I learn easily and remember well.",
            "I take one clear step, then the next.", "I am present with my work.",
            "I finish what I start.", "My breath brings me back to the task.",
            "I trust my preparation.", "I enjoy the feeling of deep concentration.",
        ),
        deep_statements=(
            "I choose where my attention goes.", "My focus is an act of care for my goals.",
            "I am the calm centre of a busy day.", "I let go of perfect and choose progress.",
            "My mind becomes quiet so my work can speak.",
            "I return to the present moment as often as I need to.",
        ),
        identity=(
            "I am someone who does deep, focused work.",
            "I am someone who follows through.",
            "I am someone who protects my attention.",
            "I am a clear thinker.",
            "I am someone who begins before I feel ready.",
            "My focus is a skill I strengthen every day.",
        ),
        insights=(
            "A clear mind is not an empty mind. | It is a mind that rests on one thing at a "
            "time.",
            "Whenever your attention wanders, the moment you notice is the moment you return. "
            "| That return is the practice.",
            "You don't need to hold the whole task at once. | Only the next small step.",
            "Notice how spacious it feels to want nothing but this breath. | Your work can "
            "feel like this too.",
            "Your preparation is already inside you. | Trust it to be there when you need it.",
        ),
        intentions=("to give my full attention to what matters most",
                    "to work with a clear and steady mind",
                    "to take one focused step at a time"),
        scenes=("river", "lake", "mountain", "forest"),
        breaths=("box", "counted", "energising"),
        actions=("grounding_feet", "write_word", "bow"),
    ),
    Theme(
        key="gratitude", noun="gratitude",
        keywords=("grateful", "gratitude", "thankful", "thanks", "appreciate", "appreciation",
                  "blessings", "blessed", "joy", "joyful", "happiness", "happy", "savour"),
        qualities=("Thankful Heart", "Small Joys", "Full Heart", "Gratitude",
                   "Counting Blessings", "The Good Already Here"),
        statements=(
            "I am grateful for this breath.", "I notice the good around me.",
            "My heart is open to small joys.", "I appreciate my body for carrying me.",
            "I am thankful for the people who care for me.", "I find something to enjoy today.",
            "My life holds many quiet gifts.", "I savour simple moments.",
            "I give thanks for what I have.", "I see beauty in ordinary things.",
            "I am grateful for how far I have come.", "My gratitude grows when I share it.",
            "I welcome joy without needing a reason.", "I have enough, right now.",
        ),
        deep_statements=(
            "I am grateful even for what taught me through difficulty.",
            "My attention is a gift I give to what I love.",
            "I let gratitude soften how I see myself.",
            "I receive kindness as easily as I give it.",
            "My life is full of more love than I can always see.",
            "I am thankful to be exactly here.",
        ),
        identity=(
            "I am someone who notices what is good.",
            "I am someone who says thank you often.",
            "I am a grateful and generous person.",
            "I am someone who savours life.",
            "My gratitude is a daily practice.",
            "I am someone who lets joy in.",
        ),
        insights=(
            "Gratitude begins with noticing. | Right now, notice one thing, however small, "
            "that is going well.",
            "Bring to mind someone who has been kind to you. | Let yourself feel how it felt "
            "to receive that kindness.",
            "Even on hard days, something is holding you: the ground, the breath, a friend. "
            "| Let yourself feel held.",
            "Imagine saying thank you to your own body. | It has carried you through every "
            "single day.",
            "Joy often hides in ordinary things: warm light, a cup of tea, a familiar voice. "
            "| Let them count.",
        ),
        intentions=("to notice the good that is already here",
                    "to meet this day with a thankful heart",
                    "to let small joys count"),
        scenes=("garden", "meadow", "sunrise", "hearth"),
        breaths=("heart", "natural"),
        actions=("open_palms", "heart_hands", "write_word"),
    ),
    Theme(
        key="self_worth", noun="self-kindness",
        keywords=("self-love", "self love", "love myself", "self-compassion",
                  "self compassion", "kind to myself", "kinder to myself", "worth", "worthy",
                  "enough", "accept myself", "acceptance", "self-acceptance", "body image",
                  "inner critic", "self-criticism", "perfectionism", "not good enough",
                  "compassion", "gentle with myself"),
        qualities=("Gentle With Myself", "Enough", "A Kind Voice", "Coming Home",
                   "Worthy", "Soft Heart", "Warm Welcome"),
        statements=(
            "I am enough as I am.", "I speak to myself with kindness.",
            "I am worthy of love and respect.", "My feelings are valid.",
            "I treat myself like someone I love.", "I accept myself, right now.",
            "I am allowed to make mistakes.", "My body deserves care and gentleness.",
            "I forgive myself for not knowing sooner.", "I am learning and growing.",
            "I give myself the patience I give others.", "My needs matter.",
            "I am proud of the small steps I take.", "I deserve rest and joy.",
        ),
        deep_statements=(
            "My worth was never something to earn.", "I hold every part of myself with care.",
            "I am whole, even when I feel broken.",
            "I choose to be on my own side.",
            "My inner voice is becoming my kindest friend.",
            "I belong to myself.",
        ),
        identity=(
            "I am someone who is kind to myself.",
            "I am someone who knows my worth.",
            "I am someone who keeps gentle promises to myself.",
            "I am a person who deserves care.",
            "I am someone who meets mistakes with compassion.",
            "My kindness includes me.",
        ),
        insights=(
            "Imagine speaking to yourself the way you would speak to a dear friend. | Notice "
            "how different that feels.",
            "You do not have to earn your place here. | You are welcome simply because you "
            "exist.",
            "Every part of you, even the parts you struggle with, is trying to help you. | "
            "You can meet them with warmth.",
            "Place your attention on your heart and offer yourself these words: may I be "
            "kind to myself.",
            "Growth does not need harshness. | Gentleness is strong enough to carry you "
            "forward.",
        ),
        intentions=("to be on my own side today", "to speak to myself with kindness",
                    "to remember that I am enough"),
        scenes=("garden", "hearth", "shore", "meadow"),
        breaths=("heart", "natural", "sigh"),
        actions=("self_embrace", "heart_hands", "open_palms"),
    ),
    Theme(
        key="energy", noun="energy",
        keywords=("energy", "energised", "energized", "energetic", "motivation", "motivated",
                  "momentum", "start my day", "wake up", "waking up", "vitality", "lazy",
                  "sluggish", "get going", "drive", "fresh start", "morning routine",
                  "workout", "exercise", "alive"),
        qualities=("Rise and Shine", "Fresh Start", "Bright Morning", "Spark", "Momentum",
                   "New Energy", "Wide Awake"),
        statements=(
            "I am full of fresh energy.", "I welcome this day with enthusiasm.",
            "My body feels awake and alive.", "I take the first step with ease.",
            "I am motivated and ready.", "I choose to move with purpose today.",
            "My energy grows as I move.", "I greet this day with a smile.",
            "I am excited about what I can do today.", "I breathe in vitality.",
            "I have everything I need to begin.", "My steps are light and strong.",
            "I turn my plans into action.", "I celebrate each thing I get done.",
        ),
        deep_statements=(
            "My energy flows toward what I care about.",
            "I spend my energy on what truly matters.",
            "I am the spark that gets things moving.",
            "I rise to meet my life, fully awake.",
            "My enthusiasm is contagious.",
            "I honour my rhythms of effort and rest.",
        ),
        identity=(
            "I am someone who starts the day with purpose.",
            "I am someone who takes action.",
            "I am an energetic and lively person.",
            "I am someone who keeps moving forward.",
            "I am someone who brings energy to everything I do.",
            "My mornings set the tone for my life.",
        ),
        insights=(
            "Energy often comes after you begin, not before. | One small movement is enough "
            "to start the flow.",
            "Feel the aliveness in your hands, your feet, your chest. | It has been there "
            "all along.",
            "Imagine the first thing you will do today, and see yourself doing it with ease "
            "and enjoyment.",
            "Each breath brings fresh oxygen to every cell. | Let yourself feel awake from "
            "the inside out.",
            "You don't need to do everything today. | Just the next bright, simple step.",
        ),
        intentions=("to meet this day fully awake", "to move with purpose and joy",
                    "to take the first step with energy"),
        scenes=("sunrise", "meadow", "shore", "mountain"),
        breaths=("energising", "box"),
        actions=("stretch_rise", "power_stance", "release_shake"),
    ),
    Theme(
        key="letting_go", noun="release",
        keywords=("let go", "letting go", "release", "grief", "grieving", "loss", "lost",
                  "breakup", "break-up", "break up", "heartbreak", "heartbroken", "forgive",
                  "forgiveness", "past", "regret", "anger", "angry", "resentment", "move on",
                  "moving on", "divorce", "ended", "goodbye", "sadness", "sad"),
        qualities=("Letting Go", "Open Hands", "Leaves on the Water", "Lighter",
                   "Release", "The Long Exhale", "Setting It Down"),
        statements=(
            "I let go of what I cannot control.", "I release what no longer serves me.",
            "My heart is allowed to heal at its own pace.",
            "I make space for something new.", "I forgive myself and move forward.",
            "I breathe out what I am ready to release.", "I allow my feelings to move through me.",
            "I am lighter with every breath.", "I honour what was and open to what is.",
            "My hands are open.", "I set down what is too heavy to carry.",
            "I let the past be the past.", "I trust that I can begin again.",
            "I am gentle with myself as I let go.",
        ),
        deep_statements=(
            "I hold my memories with love and let them rest.",
            "I release the need to have been different.",
            "My grief is a measure of my love.",
            "I let go without losing what matters.",
            "I am free to choose what I carry forward.",
            "I soften around what hurts.",
        ),
        identity=(
            "I am someone who can let go.",
            "I am someone who carries only what I choose.",
            "I am someone who makes peace with the past.",
            "I am a person who begins again.",
            "I am someone who lets feelings move through me.",
            "My heart has room for what comes next.",
        ),
        insights=(
            "Letting go is not forgetting. | It is loosening your grip, so your hands can rest.",
            "Whatever you feel right now is allowed to be here. | Feelings move when they are "
            "welcomed.",
            "Imagine setting down a heavy bag you have carried for a long time. | Notice how "
            "your shoulders feel without it.",
            "With every out-breath, let a little more go. | You don't have to do it all at once.",
            "What you loved remains part of you. | What weighed you down can be set down.",
        ),
        intentions=("to set down what is too heavy to carry",
                    "to make space for what comes next",
                    "to let my feelings move through me"),
        scenes=("river", "shore", "lake", "meadow"),
        breaths=("sigh", "counted", "natural"),
        actions=("release_shake", "open_palms", "write_word"),
    ),
    Theme(
        key="connection", noun="connection",
        keywords=("relationship", "relationships", "partner", "family", "friends", "friend",
                  "friendship", "lonely", "loneliness", "alone", "connection", "connected",
                  "love", "loving", "kindness", "marriage", "children", "kids", "parent",
                  "community", "belong", "belonging"),
        qualities=("Open Heart", "Threads of Light", "Belonging", "Warm Connection",
                   "Loving Kindness", "Held", "Kindred"),
        statements=(
            "I am open to love.", "I give and receive kindness freely.",
            "I belong, just as I am.", "My relationships are built on honesty and care.",
            "I listen with an open heart.", "I am surrounded by people who care about me.",
            "I express my feelings with kindness.", "I let others see the real me.",
            "My heart has room for the people I love.", "I attract warm and caring connections.",
            "I forgive easily and love generously.", "I am a good friend.",
            "I feel connected to the people around me.", "I reach out when I need support.",
        ),
        deep_statements=(
            "I am connected to everyone who has ever wished to be loved.",
            "My love does not need to be earned back.",
            "I allow myself to be truly seen.",
            "I hold others with compassion, and myself too.",
            "My boundaries make my love stronger.",
            "I am never as alone as I sometimes feel.",
        ),
        identity=(
            "I am someone who loves generously.",
            "I am someone people feel safe with.",
            "I am someone who listens deeply.",
            "I am a person who reaches out.",
            "I am someone who belongs.",
            "My kindness connects me to others.",
        ),
        insights=(
            "Bring to mind someone who loves you. | Feel their good wishes reaching you now.",
            "Now bring to mind someone you love, and silently wish them well: may you be "
            "happy, may you be at ease.",
            "Connection begins with presence. | Every time you truly listen, you offer a gift.",
            "Imagine a warm thread of light running from your heart to the hearts of the "
            "people you care about.",
            "Even in moments of distance, you are part of a web of care that holds you.",
        ),
        intentions=("to open my heart to the people around me",
                    "to give and receive kindness freely",
                    "to remember that I belong"),
        scenes=("hearth", "garden", "night_sky", "meadow"),
        breaths=("heart", "natural"),
        actions=("heart_hands", "self_embrace", "open_palms"),
    ),
    Theme(
        key="creativity", noun="creativity",
        keywords=("creative", "creativity", "create", "creating", "writing", "write", "art",
                  "artist", "music", "ideas", "idea", "inspiration", "inspired",
                  "imagination", "writer's block", "design", "paint", "painting", "play"),
        qualities=("Open Canvas", "Spark of Ideas", "Creative Flow", "Wonder",
                   "The Blank Page", "Free to Create", "Playful Mind"),
        statements=(
            "I am a creative person.", "I welcome ideas easily.",
            "I give myself permission to play.", "My imagination is rich and alive.",
            "I trust my creative voice.", "I create for the joy of creating.",
            "I welcome new ideas with curiosity.", "I let my work be imperfect and alive.",
            "My creativity flows when I relax.", "I notice inspiration everywhere.",
            "I make time for what I love to create.", "I am open to surprise.",
            "I follow my curiosity.", "I enjoy the process as much as the result.",
        ),
        deep_statements=(
            "I create from a place of play, not fear.",
            "My voice is unique and worth expressing.",
            "I let ideas arrive without judging them.",
            "I am a channel for something bigger than me.",
            "I honour the quiet seasons of my creativity.",
            "My curiosity leads me where I need to go.",
        ),
        identity=(
            "I am someone who creates.",
            "I am someone who follows curiosity.",
            "I am an artist in my own way.",
            "I am someone who begins with a blank page and trusts it.",
            "I am someone who plays.",
            "My ideas matter.",
        ),
        insights=(
            "Creativity loves spaciousness. | In this quiet, let your mind wander wherever "
            "it wants.",
            "Notice any images, colours or words that appear, without judging them. | They "
            "are gifts from your imagination.",
            "You don't need a perfect idea. | You only need to begin, and let it grow.",
            "Remember how you played as a child, without worrying about results. | That "
            "freedom is still inside you.",
            "Every creator faces the blank page. | It is not emptiness; it is possibility.",
        ),
        intentions=("to play and create without fear",
                    "to welcome ideas with curiosity",
                    "to trust my own creative voice"),
        scenes=("garden", "meadow", "river", "night_sky"),
        breaths=("natural", "energising", "heart"),
        actions=("write_word", "open_palms", "release_shake"),
    ),
    Theme(
        key="abundance", noun="abundance",
        keywords=("money", "abundance", "wealth", "prosperity", "financial", "finances",
                  "career", "success", "successful", "promotion", "business", "goals", "goal",
                  "achieve", "achievement", "job", "salary", "opportunity", "opportunities"),
        qualities=("Open Doors", "Growing Season", "Abundant Life", "Steady Growth",
                   "Harvest", "Room to Grow", "The Wide River"),
        statements=(
            "I am open to new opportunities.", "I take clear steps toward my goals.",
            "I am capable of creating the life I want.", "My work has value.",
            "I make wise choices with my money.", "I welcome success and I am ready for it.",
            "I see possibilities everywhere.", "I am grateful for what I already have.",
            "My efforts add up every day.", "I deserve to be well rewarded.",
            "I am building something meaningful.", "I act on my ideas with confidence.",
            "I learn from every setback.", "My future is full of possibility.",
        ),
        deep_statements=(
            "I define success on my own terms.", "My sense of enough brings me peace.",
            "I grow without losing what matters to me.",
            "I am worthy of good things arriving in my life.",
            "I let go of scarcity and choose trust.",
            "My generosity and my prosperity grow together.",
        ),
        identity=(
            "I am someone who follows through on my goals.",
            "I am someone who sees opportunity.",
            "I am someone who values my work.",
            "I am a person who builds steadily.",
            "I am someone who is ready for success.",
            "My choices create my future.",
        ),
        insights=(
            "Picture yourself a year from now, having taken steady steps. | Notice how it "
            "feels to have grown.",
            "Abundance begins with noticing what is already here. | Let yourself feel how "
            "much you have.",
            "Every big goal is built from small, repeated actions. | Today's step is enough.",
            "You are allowed to want more and to be content at the same time.",
            "Imagine a door opening in front of you, and light pouring through. | You are "
            "ready to walk through it.",
        ),
        intentions=("to take one clear step toward my goals",
                    "to see the opportunities around me",
                    "to value my work and my time"),
        scenes=("garden", "river", "sunrise", "mountain"),
        breaths=("box", "energising", "natural"),
        actions=("power_stance", "write_word", "open_palms"),
    ),
    Theme(
        key="change", noun="resilience",
        keywords=("change", "changes", "transition", "new job", "moving", "move", "new chapter",
                  "new beginning", "uncertain", "uncertainty", "resilience", "resilient",
                  "hard time", "difficult", "challenge", "challenges", "cope", "coping",
                  "strength", "strong", "unknown", "fear", "afraid", "scared", "setback"),
        qualities=("New Chapter", "Steady Through Change", "The Open Door", "Bend, Not Break",
                   "Strong Roots", "Through the Storm", "Brave Steps"),
        statements=(
            "I can handle change.", "I adapt with grace.", "I am stronger than I think.",
            "I trust myself to find my way.", "I take this one day at a time.",
            "My roots keep me steady as things change.", "I welcome new beginnings.",
            "I have come through hard things before.", "I am learning as I go.",
            "I meet the unknown with curiosity.", "I ask for help when I need it.",
            "My breath steadies me in uncertain moments.", "I am resilient and resourceful.",
            "I let myself grow through this.",
        ),
        deep_statements=(
            "I bend like a tree in the wind and stay rooted.",
            "My strength includes softness.",
            "I trust the person I am becoming through this.",
            "I find steadiness within, whatever changes outside.",
            "I am allowed to grieve what ends and welcome what begins.",
            "I see a beginning in every ending.",
        ),
        identity=(
            "I am someone who adapts.",
            "I am someone who keeps going.",
            "I am someone who grows through challenges.",
            "I am a resilient person.",
            "I am someone who finds my footing again.",
            "My strength is quiet and real.",
        ),
        insights=(
            "Change can feel like standing on moving ground. | Your breath is a steady place "
            "to stand.",
            "Remember a time you came through something difficult. | Notice what helped you "
            "then. It is still with you.",
            "You don't have to see the whole path. | Only the next step, lit just enough to "
            "walk.",
            "Trees survive storms by bending. | You are allowed to bend, too, and still stand.",
            "Something new is growing in you, even now. | Let it take its time.",
        ),
        intentions=("to meet this change with steadiness",
                    "to trust myself through what is new",
                    "to take the next step, and only the next step"),
        scenes=("mountain", "forest", "river", "sunrise"),
        breaths=("counted", "box", "natural"),
        actions=("grounding_feet", "power_stance", "bow"),
    ),
    Theme(
        key="presence", noun="presence",
        keywords=("present", "presence", "mindful", "mindfulness", "here and now", "grounded",
                  "grounding", "balance", "balanced", "wellbeing", "well-being", "centred",
                  "centered", "awareness", "slow down", "meditation", "meditate"),
        qualities=("Here and Now", "Simply Here", "This Moment", "Grounded", "Coming Back",
                   "Quiet Presence", "The Present Breath"),
        statements=(
            "I am here, now.", "I notice this breath.", "I am grounded in my body.",
            "I let this moment be enough.", "My attention rests in the present.",
            "I slow down and notice.", "I am connected to the earth beneath me.",
            "I welcome whatever this moment brings.", "I am aware and awake.",
            "My body is my home.", "I choose to be present.", "I find balance in stillness.",
            "I listen to what my body tells me.", "I meet each moment fresh.",
        ),
        deep_statements=(
            "I am the awareness that notices my thoughts.",
            "I rest in being, not only in doing.",
            "My life happens in this moment.",
            "I return home to myself with every breath.",
            "I let go of the story and feel what is here.",
            "I am at peace with what is.",
        ),
        identity=(
            "I am someone who lives in the present.",
            "I am someone who notices.",
            "I am someone who slows down on purpose.",
            "I am a grounded and aware person.",
            "I am someone who comes back to the breath.",
            "My presence is my practice.",
        ),
        insights=(
            "Right now, in this breath, nothing is missing. | Just this, and this is enough.",
            "Notice how much is happening in this single moment: sounds, sensations, breath. "
            "| Life is always here.",
            "Thoughts about the past and future will come. | Each time, gently return to now.",
            "Your body is always in the present. | Whenever you feel lost, come back to it.",
            "Awareness is like the sky. | Thoughts and feelings pass through it like weather.",
        ),
        intentions=("to be fully present in my life", "to come back to this moment",
                    "to feel grounded in my body"),
        scenes=("forest", "meadow", "lake", "shore", "mountain"),
        breaths=("natural", "counted", "box"),
        actions=("grounding_feet", "open_palms", "bow"),
    ),
)
THEMES_BY_KEY = {t.key: t for t in THEMES}
DEFAULT_THEME = "presence"

#: Affirmations anyone can say, whatever the theme.
UNIVERSAL_STATEMENTS = (
    "I am doing my best, and my best is enough.", "I choose to be kind to myself today.",
    "I breathe in and I feel at home in myself.", "My breath is always with me.",
    "I am exactly where I need to be.", "I trust the pace of my life.",
    "I give myself permission to feel what I feel.", "I am worthy of good things.",
    "My heart is open.", "I honour my own needs.", "I am growing every day.",
    "I let go of what is not mine to carry.", "I am grateful for this moment.",
    "My body and mind work together for me.", "I meet myself with patience.",
)
TIME_STATEMENTS = {
    "morning": ("I welcome this new day.", "I begin this morning with intention.",
                "My day unfolds with ease.", "I greet the morning with an open heart."),
    "midday": ("I pause and reset in the middle of my day.", "I return to my work refreshed.",
               "I have time to breathe, even now.", "My afternoon flows with ease."),
    "evening": ("I let the day settle.", "I am proud of what I did today.",
                "My evening is calm and gentle.", "I release the rush of the day."),
    "night": ("I let this day be complete.", "My body is ready for rest.",
              "I welcome a peaceful night.", "I sink into softness and ease."),
}
ENERGETIC_STATEMENTS = (
    "I am ready to go.", "I say yes to this day.", "My energy is bright and clear.",
    "I move forward with enthusiasm.",
)

# --- meditation passages ------------------------------------------------------------

GREETINGS = {
    "morning": (
        "Good morning{name_}. Welcome to this quiet moment at the start of your day.",
        "Welcome{name_}. The day is still new, and this time is yours.",
        "Good morning{name_}. Before the day asks anything of you, you are here, for "
        "yourself.",
    ),
    "midday": (
        "Welcome{name_}. In the middle of your day, you have found a pause.",
        "Hello{name_}. Let this be a small island of quiet in the middle of the day.",
        "Welcome{name_}. Whatever the morning held, you can set it aside for a few minutes.",
    ),
    "evening": (
        "Good evening{name_}. The day is nearly done, and you can set it down now.",
        "Welcome{name_}. As the evening settles, let yourself settle too.",
        "Hello{name_}. The work of the day is behind you. This time is simply for you.",
    ),
    "night": (
        "Welcome{name_}. The night is here, and there is nothing left to do.",
        "Hello{name_}. Let this be the softest part of your day, the part that leads to "
        "rest.",
        "Welcome{name_}. The world is quiet now, and you can be quiet too.",
    ),
    "any": (
        "Welcome{name_}. This time is yours.",
        "Hello{name_}, and welcome. For the next few minutes, there is nothing you need to "
        "fix.",
        "Welcome{name_}. Thank you for making time for yourself.",
    ),
}
ENERGETIC_GREETINGS = (
    "Welcome{name_}! Let's take these minutes to wake up your energy.",
    "Hello{name_}! Let's gather your energy and point it somewhere good.",
)
WARM_GREETINGS = (
    "Welcome{name_}. I'm so glad you are here.",
    "Hello{name_}. Come in, and be gentle with yourself for a while.",
)
POSTURES_SITTING = (
    "Settle into your seat, feet resting on the floor, spine tall but not stiff. | Let your "
    "shoulders drop away from your ears.",
    "Find a position that lets your body be supported, sitting upright or lying down. | Let "
    "your hands rest wherever they feel natural.",
    "Sit comfortably and let your hands rest on your lap. | Lengthen through the crown of "
    "your head, and soften everything else.",
)
POSTURES_LYING = (
    "Let yourself lie back and feel the bed holding the whole weight of you. | You don't "
    "have to hold yourself up anymore.",
    "Lie down and let your arms rest by your sides, palms open. | Let the surface beneath you "
    "take all of your weight.",
)
EYES = (
    "Close your eyes if that feels right, or let your gaze rest softly on one spot. | Let "
    "your face soften.",
    "Let your eyelids grow heavy and close, or lower your gaze toward the floor.",
)
SETTLING = (
    "There is nothing to get right here. | Whatever you feel is welcome, exactly as it is.",
    "For these few minutes, nothing else needs your attention. | The world can wait a "
    "little.",
    "Notice the sounds around you, near and far, without needing to name them. | Let them "
    "come and go like weather.",
    "Notice where your body meets the surface beneath you. | Feel how steadily it holds you.",
    "Take a moment to simply arrive. | Let the busyness of the {part_of_day} fall away, like "
    "a coat slipping from your shoulders.",
)
SITUATION_FRAMES = (
    "You mentioned this: “{situation}”. | That is welcome here too; you don't need to solve "
    "it right now.",
    "You said: “{situation}”. | Let it be acknowledged, and then let it sit beside you for a "
    "while.",
    "You came in carrying this: “{situation}”. | For now, you can set it down next to you. "
    "It will wait.",
)
INTENT_FRAMES = (
    "You came here with an intention, in your own words: “{intent}”. | Hold it lightly for "
    "now.",
    "Your intention for this time is: “{intent}”. | Let it rest somewhere in the background.",
)
FOCUS_FRAMES = (
    "You wanted to focus on “{focus}”. | Let that be the gentle thread running through this "
    "practice.",
    "Today's focus is “{focus}”. | Keep it close, like a small stone in your pocket.",
)

BREATHS: dict[str, tuple[str, ...]] = {
    "natural": (
        "Now bring your attention to your breath, without changing it. | Just notice the air "
        "coming in, and the air going out.",
        "Feel the breath at the tip of your nose, cool on the way in, a little warmer on the "
        "way out.",
        "Notice the rise and fall of your chest and belly. | Each breath arrives on its own; "
        "you don't have to do anything.",
        "If your mind wanders, that is what minds do. | Gently return to the next breath, "
        "without judgement.",
        "Let each breath be a little slower than the last, as if your body remembers how to "
        "rest.",
    ),
    "counted": (
        "Let's slow the breath together. | Breathe in gently through your nose for a count of "
        "four.",
        "In, two, three, four. | And out slowly through your mouth, two, three, four, five, "
        "six.",
        "Again: in for four, filling the belly. | Out for six, letting everything soften.",
        "Keep this rhythm on your own for a few breaths. | A longer out-breath tells your body "
        "it is safe to rest.",
        "Now let the counting go, and let the breath stay slow and easy on its own.",
    ),
    "box": (
        "We will breathe in a square, four sides of four counts. | Breathe in for four.",
        "Hold gently for four. | Breathe out for four. | Hold again for four.",
        "Continue in your own time: in, hold, out, hold. | Let the counting give your mind one "
        "simple thing to do.",
        "Notice how the mind grows clearer as the rhythm steadies.",
        "Let the square soften now, and breathe naturally, keeping the clarity it brought.",
    ),
    "energising": (
        "Sit a little taller and take a full, deep breath in, filling your lungs from the "
        "bottom to the top.",
        "Breathe out firmly through the mouth, as if blowing out a candle. | Feel the belly "
        "draw in.",
        "Again, a strong breath in, drawing in fresh energy. | And a clean breath out, "
        "clearing away what feels stale.",
        "Three more breaths like this, each one a little brighter. | Then let the breath "
        "return to its own rhythm.",
        "Notice the tingling aliveness in your face, your hands, your chest.",
    ),
    "sigh": (
        "Take a deep breath in through your nose, and let it go with a long sigh. | Let the "
        "sound carry some of the {part_of_day} out of you.",
        "Once more: breathe in deeply, and sigh it out, jaw loose, shoulders heavy.",
        "And a third time, the sigh a little softer. | Notice the quiet that follows.",
        "Now let the breath find its own pace, slow and easy.",
        "With every out-breath, let your body grow a little heavier and a little softer.",
    ),
    "heart": (
        "Place a hand on your heart, or simply bring your attention to the centre of your "
        "chest.",
        "Imagine breathing in and out through the heart itself. | Each in-breath brings a "
        "little warmth, each out-breath a little softness.",
        "Let the breath be kind and unhurried, as if it had all the time in the world.",
        "Feel the gentle rhythm beneath your hand, the steady work of your heart, keeping you "
        "alive without being asked.",
        "With each breath, let the warmth in your chest grow a little wider.",
    ),
}

BODIES: dict[str, tuple[str, ...]] = {
    "top_down": (
        "Now let your attention travel slowly through your body, beginning at the top of your "
        "head.",
        "Soften your forehead, the space between your eyebrows, the small muscles around your "
        "eyes.",
        "Let your jaw unclench, your tongue rest, your lips part slightly.",
        "Feel your neck and shoulders, and let them drop, just a little more.",
        "Let the softness flow down your arms, into your hands, right to the fingertips.",
        "Notice your chest and belly rising and falling, and let the belly be soft.",
        "Feel your back, the long line of your spine, supported and easy.",
        "Let your hips grow heavy, your legs loosen, and your feet rest completely.",
        "Now feel your whole body at once: breathing, alive, here.",
    ),
    "feet_up": (
        "Bring your attention down to your feet. | Notice any warmth, coolness or tingling "
        "there.",
        "Let your awareness rise slowly through your ankles, your calves and your knees, "
        "softening as it goes.",
        "Feel your thighs and hips, heavy and supported.",
        "Let it travel up through your belly and chest, and along your back, easing whatever "
        "it meets.",
        "Feel your shoulders, arms and hands, loose and warm.",
        "Up through your neck, your face and the crown of your head. | The whole body, "
        "resting in its own weight.",
    ),
    "release": (
        "Notice where you are holding tension right now, perhaps in the shoulders, the jaw or "
        "the hands.",
        "Gently squeeze your hands into fists, hold for a moment, and let them open. | Feel "
        "the difference.",
        "Lift your shoulders up toward your ears, hold, and let them fall. | Let them fall a "
        "little further than usual.",
        "Scrunch up your face, then let it go completely smooth.",
        "Let any leftover tightness melt on the next out-breath, like snow in the sun.",
    ),
    "heaviness": (
        "Feel your body growing heavy, sinking a little deeper with every breath.",
        "Your legs are heavy and warm. | Your arms are heavy and warm.",
        "Your head rests completely, as if the pillow is holding every thought.",
        "There is nothing to hold up anymore. | Let the bed carry all of you.",
        "Your breathing is slow and even, rising and falling on its own.",
    ),
    "warmth": (
        "Imagine a gentle warmth gathering in the centre of your chest, like sunlight on skin.",
        "Let that warmth spread slowly across your shoulders and down your arms.",
        "Let it flow down through your belly, your hips and your legs, all the way to your "
        "feet.",
        "Every part of you that it touches softens and feels welcome.",
        "Rest in this warmth for a few breaths, held from the inside.",
    ),
}

#: Scenes: (title word, times of day that suit it, passages). "{insight}" marks
#: where the theme's reflection goes.
SCENES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "lake": ("The Still Lake", ("morning", "midday", "evening", "any"), (
        "Now imagine yourself beside a still lake in {light}.",
        "The surface is smooth as glass, reflecting the sky and the trees along the shore.",
        "Notice the smell of water and green things, the cool air on your face.",
        "Pick up a small pebble and hold it in your palm for a moment. | Let it hold whatever "
        "you are ready to put down.",
        "Toss it gently into the lake and watch the ripples spread, wider and wider, until "
        "the water is still again.",
        "Like the lake, your mind can be stirred and still return to calm.",
    )),
    "forest": ("The Quiet Forest", ("morning", "midday", "evening", "any"), (
        "Picture yourself walking on a soft path through a quiet forest, {light} falling "
        "between the leaves.",
        "Hear the leaves under your feet, and birdsong somewhere high above.",
        "The air smells of pine and earth. | Breathe it in.",
        "Find an old, wide tree and rest your back against it. | Feel how steady it is, rooted "
        "deep in the ground.",
        "This tree has stood through many seasons and storms. | Let some of its patience move "
        "into you.",
    )),
    "shore": ("The Open Shore", ("morning", "midday", "evening", "night", "any"), (
        "Imagine you are standing on a wide, empty beach in {light}.",
        "Feel the sand beneath your feet, soft and a little cool.",
        "Watch the waves roll in and slide back out, in no hurry at all.",
        "Let your breath move with them: in as a wave arrives, out as it returns to the sea.",
        "With every wave that draws back, let it carry away one small worry.",
    )),
    "meadow": ("The Wide Meadow", ("morning", "midday", "evening", "any"), (
        "Picture an open meadow of long grass and wildflowers, touched by {light}.",
        "A light breeze moves across it, and the grass bends and rises like a slow breath.",
        "Walk barefoot for a while and feel the earth, warm and alive beneath you.",
        "Find a place to lie down in the grass and look up at the wide sky.",
        "Clouds drift by, unhurried, the way thoughts can drift by when you let them.",
    )),
    "mountain": ("The Mountain", ("morning", "midday", "evening", "any"), (
        "Imagine a great mountain, its base wide and rooted, its peak in {light}.",
        "Weather moves around it: wind, rain, sunshine, clouds. | The mountain remains.",
        "Now imagine that you are the mountain: your seat solid, your head high and still.",
        "Let the weather of this {part_of_day} pass over you, while the core of you stays "
        "steady.",
        "Feel how grounded you are, how patient, how strong.",
    )),
    "garden": ("The Inner Garden", ("morning", "midday", "evening", "any"), (
        "Imagine a garden that belongs to you alone, the gate open, {light} across the paths.",
        "Walk slowly among the plants and notice what grows here: flowers, herbs, a tree "
        "heavy with fruit.",
        "Every plant here was once a small seed that someone tended with patience.",
        "Find a bench and sit. | Notice the hum of bees and the smell of warm soil.",
        "Plant one new seed in the soft earth beside you, a seed for what you want to grow.",
    )),
    "night_sky": ("The Night Sky", ("evening", "night", "any"), (
        "Imagine lying on a warm blanket under a clear night sky.",
        "Above you are more stars than you can count, each one quietly shining.",
        "The sky is so vast that your worries look very small beneath it.",
        "Let your breath slow to the slow turning of the stars.",
        "You are part of this quiet, wide universe, and you belong here.",
    )),
    "river": ("The Gentle River", ("morning", "midday", "evening", "any"), (
        "Picture a clear river flowing gently past you in {light}.",
        "Sit on the bank and listen to the water moving over the stones.",
        "Imagine your thoughts as leaves falling onto the water. | Watch each one float by "
        "and drift out of sight.",
        "You don't need to follow them. | Stay on the bank, watching, resting.",
        "The river keeps moving, and you stay here, calm and still.",
    )),
    "sunrise": ("The Sunrise", ("morning", "midday", "any"), (
        "Imagine standing on a hilltop as the sun begins to rise.",
        "The sky turns from grey to rose to gold, and the first warm light touches your face.",
        "Feel the warmth on your skin, gathering in your chest like a small sun of your own.",
        "With every breath, that light grows brighter and spreads through your whole body.",
        "This is the energy of beginnings, and it is already inside you.",
    )),
    "hearth": ("The Warm Hearth", ("evening", "night", "any"), (
        "Imagine a small, cosy room with a fire glowing in the hearth.",
        "You sit in a soft chair, wrapped in a warm blanket, the flames crackling softly.",
        "Watch the fire for a while: its slow flicker, its gentle glow.",
        "Everything you needed to do today is done, or can wait until tomorrow.",
        "Here you are safe, warm, and completely at home.",
    )),
}
SCENE_KEYWORDS = {
    "shore": ("ocean", "sea", "beach", "waves", "shore", "coast"),
    "forest": ("forest", "tree", "trees", "woods", "woodland"),
    "mountain": ("mountain", "mountains", "hill", "peak"),
    "garden": ("garden", "flowers", "flower", "plants", "bloom"),
    "night_sky": ("stars", "star", "sky", "moon", "space", "universe"),
    "river": ("river", "stream", "flow", "flowing"),
    "lake": ("lake", "pond", "still water"),
    "sunrise": ("sun", "sunrise", "dawn", "sunshine"),
    "hearth": ("fire", "fireplace", "hearth", "cosy", "cozy", "home"),
    "meadow": ("meadow", "field", "grass", "nature"),
}
LIGHTS = {"morning": "the soft light of early morning", "midday": "clear midday light",
          "evening": "the golden light of evening", "night": "silver moonlight",
          "any": "soft, gentle light"}
PARTS_OF_DAY = {"morning": "morning", "midday": "day", "evening": "evening", "night": "night",
                "any": "day"}

SCENE_CLOSINGS = (
    "Now let the scene fade gently, keeping its feeling with you.",
    "Slowly let the images soften and fade, like the end of a pleasant dream.",
    "Let the place you imagined grow quiet and distant, knowing you can return whenever you "
    "like.",
)
CARRY_FRAMES = (
    "Choose one sentence to take with you, and say it silently: {carry}",
    "Here is a phrase to carry with you today. Repeat it slowly in your mind: {carry}",
    "Let these words settle into you, like a seed into soil: {carry}",
)
INTENT_RETURNS = (
    "You came here wanting this: “{intent}”. | Notice that some part of it is already "
    "present, right here, in this breath.",
    "Return for a moment to your intention: “{intent}”. | Feel it not as a goal far away, but "
    "as a direction you are already facing.",
)
INWARD = (
    "Rest for a moment in the quiet behind your thoughts, the part of you that has been here "
    "all along, simply aware.",
    "Ask yourself gently: what do I need most right now? | Let the answer come in its own "
    "time, or not at all.",
    "Notice that you are the one who is aware of the breath, the body and the thoughts. | "
    "Rest as that awareness.",
    "Feel the space around your heart. | Let it be as wide as it wants to be.",
)
NOTICE_CHANGE = (
    "Notice how you feel now, compared with when you began.",
    "Take a moment to notice any small change in your body or your mind.",
)
#: Short passages that hold long silences in long meditations.
DWELLINGS = (
    "Stay here a while. | There is nothing to do.",
    "Rest in this quiet.",
    "Simply breathe, and be here.",
    "Let the silence hold you.",
    "If your mind wanders, gently come back to the breath.",
    "Stay with this feeling for a few more breaths.",
    "Nothing to change. | Just this breath, and the next.",
    "Let yourself be held by the stillness.",
)

RETURNS = {
    "morning": (
        "Begin to deepen your breath, letting energy return to your body.",
        "Wiggle your fingers and toes, and stretch in any way that feels good.",
        "When you're ready, open your eyes and step into your morning, carrying this {noun} "
        "with you.",
    ),
    "midday": (
        "Slowly begin to deepen your breath.",
        "Feel your feet on the floor and the room around you. | Move your shoulders, your "
        "hands, your neck.",
        "When you're ready, open your eyes and return to your day, refreshed and clear.",
    ),
    "evening": (
        "Gently begin to notice the room around you again.",
        "Let small movements return to your hands and feet.",
        "When you're ready, open your eyes, and let this gentle {noun} follow you into your "
        "evening.",
    ),
    "night": (
        "There is no need to come back. | Let your breath carry you toward sleep.",
        "If thoughts return, let them drift like clouds, and sink a little deeper.",
        "Rest now{name_}. | Sleep well.",
    ),
    "any": (
        "Slowly begin to deepen your breath and notice the space around you.",
        "Let gentle movement return to your fingers and toes.",
        "When you're ready, open your eyes, bringing this {noun} with you.",
    ),
}
ENERGETIC_RETURN = ("Take one big breath in, stretch your arms up high, and let it go with a "
                    "smile.")
WARM_FAREWELL = "Thank you for giving yourself this time{name_}. | You deserved it."

# --- ritual passages ---------------------------------------------------------------

RITUAL_OPENINGS = (
    "Take a moment to mark the beginning of this ritual. | If you like, light a candle, or "
    "simply place your hands together in front of your heart.",
    "Stand or sit tall, and take three slow breaths, each one taking you further from the "
    "rush of the {part_of_day}.",
    "With this breath, you cross a threshold, from ordinary time into ritual time.",
    "Let your shoulders soften and your feet feel the floor. | Arrive here completely.",
)
RITUAL_GREETINGS = (
    "Welcome{name_}. This is your {time_word}ritual, a few minutes that belong only to you.",
    "Welcome{name_}. Let this ritual be a small, steady promise to yourself.",
    "Hello{name_}. You have made time for what matters. | Let's begin.",
)
RITUAL_INTENT_FRAMES = (
    "Now bring to mind your intention. In your own words, you said: “{intent}”.",
    "Hold your intention clearly in your mind: “{intent}”.",
)
RITUAL_CHOICES = (
    "Today, you choose {intention}.",
    "This is what you are choosing now: {intention}.",
    "Let this be your intention: {intention}.",
)
RITUAL_SAY_IT = (
    "Say it once, silently or out loud, and let it be true for this moment.",
    "Repeat it to yourself slowly, and feel where it lands in your body.",
)
RITUAL_LEADINS = (
    "Now speak these words as your own, slowly, letting each one land.",
    "Now repeat each of these words after me, as if they were already true, because in this "
    "moment, they are.",
    "Let these words be spoken in your own voice, out loud or within.",
)
ACTIONS: dict[str, tuple[str, ...]] = {
    "heart_hands": (
        "Place both hands flat over the centre of your chest.",
        "Press gently, and feel the warmth of your palms through to your heart.",
        "Breathe in slowly beneath your hands. | As you breathe out, whisper: I am here for "
        "myself.",
        "Stay for three more breaths, feeling your heart beating beneath your hands.",
    ),
    "power_stance": (
        "Stand up and plant your feet hip-width apart, firmly on the floor.",
        "Lift your chest, roll your shoulders back, and raise your arms wide above your head.",
        "Hold this shape for three deep breaths, feeling how much space you are allowed to "
        "take.",
        "Lower your arms slowly, and keep the feeling of standing tall.",
    ),
    "grounding_feet": (
        "Stand or sit with both feet flat on the floor.",
        "Press your feet down gently and feel the ground pushing back, holding you.",
        "Imagine roots growing from the soles of your feet deep into the earth.",
        "With each breath out, let yourself sink into that support.",
    ),
    "water": (
        "Take a glass of water in both hands.",
        "Before you drink, hold it for a moment and breathe your intention into it.",
        "Now drink slowly, sip by sip, feeling the water move through you.",
        "Let every sip remind you of what you are choosing.",
    ),
    "release_shake": (
        "Stand up and let your arms hang loose.",
        "Begin to shake your hands gently, then your arms, then your shoulders.",
        "Let the shaking move down through your hips and legs, shaking off whatever you no "
        "longer need.",
        "Now stop, stand still, and feel the tingling aliveness in your whole body.",
    ),
    "write_word": (
        "Take a pen and a small piece of paper.",
        "Write one word that holds your intention.",
        "Hold the paper against your heart with both hands for a few breaths.",
        "Fold it and keep it somewhere you will see it.",
    ),
    "self_embrace": (
        "Cross your arms over your chest and rest your hands on your shoulders.",
        "Give yourself a gentle squeeze, the way you would hold a friend you love.",
        "Sway slowly from side to side, and breathe.",
        "Let yourself receive this care. | You deserve it.",
    ),
    "candle_breath": (
        "Light a candle, or imagine one glowing in front of you.",
        "Watch the flame for a few breaths, steady and soft.",
        "Breathe in the warmth of its light. | Breathe out slowly, so gently that the flame "
        "barely moves.",
        "Let that soft light be the last image of your {part_of_day}.",
    ),
    "open_palms": (
        "Rest your hands on your knees and turn your palms up.",
        "Feel the air on your open palms, ready to receive.",
        "With each breath in, imagine receiving what you need. | With each breath out, offer "
        "your thanks.",
        "Slowly close your hands, as if holding something precious.",
    ),
    "stretch_rise": (
        "Reach both arms up toward the ceiling and stretch your whole body long.",
        "Rise onto your toes if you can, and breathe in deeply.",
        "As you breathe out, sweep your arms down and let your head hang loose.",
        "Roll up slowly, one vertebra at a time, and stand tall, ready for the day.",
    ),
    "bow": (
        "Bring your palms together in front of your heart.",
        "Bow your head gently, honouring yourself and what you have chosen.",
        "Stay in this bow for a breath or two.",
        "Rise slowly, carrying your intention upright with you.",
    ),
}
RITUAL_CLOSINGS = (
    "This ritual is complete. | What you set in motion here stays with you.",
    "Take one last deep breath, and as you breathe out, smile gently.",
    "Thank yourself for taking this time{name_}.",
)
RITUAL_CARRY = {
    "morning": "Carry it with you into your day.",
    "midday": "Carry it with you into the rest of your day.",
    "evening": "Carry it gently into your evening.",
    "night": "Carry it softly into sleep. | If you lit a candle, you can blow it out now.",
    "any": "Carry it with you into whatever comes next.",
}
RITUAL_DEEP_OPENINGS = (
    "Before you begin, notice who is here: not your to-do list, not your worries, but you. "
    "| Welcome yourself.",
    "Feel the quiet place inside you from which this ritual begins.",
)

# --- titles ---------------------------------------------------------------------------

AFFIRMATION_TITLES = (
    "{quality}: Affirmations for {noun_t}",
    "Words of {noun_t}",
    "{time_t}Affirmations for {noun_t}",
    "{quality}",
    "I Choose {noun_t}",
    "{quality}: Words to Live By",
)
MEDITATION_TITLES = (
    "{scene}: A Meditation for {noun_t}",
    "{time_t}Meditation for {noun_t}",
    "{quality}",
    "{scene}",
    "{quality}: A Guided Meditation",
    "Into {scene_bare}",
)
RITUAL_TITLES = (
    "{time_t}Ritual of {noun_t}",
    "A Ritual for {noun_t}",
    "The {quality} Ritual",
    "{quality}: A {time_t}Ritual",
    "Ritual of {quality}",
)
