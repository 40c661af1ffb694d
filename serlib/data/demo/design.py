"""What the demo corpus says and how: sentences, voices as speakers, emotion styles and prosody.

Emotions are realised the way the acoustic literature describes them (angry: high pitch, wide range,
fast and loud; sad: low, narrow, slow and soft; happy: high and lively; neutral: in between), with
per-speaker habits and per-utterance variation, so that the task is learnable but not trivial. Each
labeled utterance also gets listener-like arousal/valence ratings around its emotion's position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from serlib.data.manifest import EMOTIONS, CorpusError

MIN_SECONDS, MAX_SECONDS = 1.0, 4.0  # the shortest and longest utterance


class DemoCorpusError(CorpusError):
    """Bad demo-corpus parameters or an unusable output folder; the message names what to change."""


# fmt: off
LABELED_SENTENCES = (
    "I told you the train leaves at seven.", "We have to talk about this right now.",
    "The letter arrived this morning.", "She said she would call me back.",
    "They moved the meeting to Friday.", "I can't believe you did that.", "Where did you put the keys?",
    "He is coming home tonight.", "That is not what I asked for.", "You never listen to a word I say.",
    "The results came in yesterday.", "I waited for you all afternoon.", "It is going to rain again.",
    "Look at what they sent us.", "We sold the house last week.", "My brother is getting married.",
    "Nobody answered the phone.", "Just sit down and tell me.", "I found your old photographs.",
    "The dog ran away again.", "They gave the job to someone else.", "This is the last time, I promise.",
    "I got the tickets for tonight.", "We are leaving in the morning.", "You knew about this the whole time.",
    "The car broke down on the highway.", "Do you remember that summer?", "Your mother called about dinner.",
    "I read the whole report.", "They closed the old bakery.", "It is finally over.",
    "I need you to come with me.", "The package was sitting by the door.", "We only have ten minutes left.",
    "He forgot about our anniversary.", "I passed the exam.", "Everything is exactly where you left it.",
    "She is not coming back.", "Can you hear the music outside?", "I made the decision myself.",
)


CROSS_SENTENCES = (
    "How did you get in here?", "I thought the concert was tomorrow.",
    "You should see the view from the roof.", "The bus was late again today.",
    "I lost my wallet at the station.", "We won the game last night.", "Did you finish the painting?",
    "My flight got cancelled.", "There is nothing left in the fridge.", "I talked to the manager about it.",
    "Your sister borrowed my jacket.", "The garden looks different now.", "I have to work this weekend.",
    "They are painting the kitchen blue.", "He sent me a message at midnight.", "We are out of coffee.",
    "I know exactly what happened.", "The neighbours are having a party.", "You took my seat.",
    "It was right here a minute ago.", "The doctor wants to see you.", "I can drive you to the airport.",
    "We never went back to that town.", "The water is cold this morning.", "She kept the ring.",
    "I think we missed the turn.", "Someone left the window open.", "The store closes at nine.",
    "He finally fixed the roof.", "We should have stayed at home.", "I got a letter from the school.",
    "They cancelled the whole trip.", "The cat is sleeping on my bed.", "You said you would be here.",
    "I will see you on Monday.", "That was my favourite cup.", "The phone has been ringing all day.",
    "We have a new teacher.", "I finished the book last night.", "This room is too small.",
)


TALK_SENTENCES = (
    "Today I want to talk about water.", "Imagine a city without cars.", "The data tells a different story.",
    "Most of us never think about it.", "Let me show you a picture.", "This changed how I see the world.",
    "We measured it in twelve countries.", "Here is the surprising part.",
    "Our brains are wired for stories.", "It started with a simple question.",
    "Ten years ago, this was impossible.", "The answer turned out to be simple.",
    "So what can we actually do?", "Think about the last time you were bored.",
    "Cells talk to each other all the time.", "This is a map of the ocean floor.",
    "We built a prototype in two weeks.", "Nobody believed it would work.",
    "The cost dropped by ninety percent.", "Children learn faster than we think.",
    "I grew up in a small village.", "Every design is a kind of promise.",
    "That is the power of small changes.", "The forest is a network.", "Energy is the hidden problem.",
    "We asked people a simple question.", "And the results were remarkable.",
    "This is where it gets interesting.", "Light travels incredibly fast.",
    "Failure taught me more than success.", "Music is older than language.", "We can see it from space.",
    "The robots learned to walk.", "Cities are growing every day.", "Curiosity is a renewable resource.",
    "Let us look at the numbers.", "Sleep is not a luxury.", "Bees are remarkable engineers.",
    "I want to leave you with one idea.", "The future is already here.", "Our planet is running a fever.",
    "Good questions matter more than answers.", "It takes courage to be honest.", "Trust is built slowly.",
    "The experiment ran for a year.", "Maps shape how we think.", "Thank you very much.",
    "We are all connected.",
)


BOOK_SENTENCES = (
    "The old man walked slowly along the shore.", "It was late in the autumn of that year.",
    "She opened the door and looked outside.", "The wind had risen during the night.",
    "He could hear the river below the hill.", "They travelled for many days without rest.",
    "The captain gave his orders quietly.", "A single candle burned upon the table.",
    "The village lay at the foot of the mountain.", "Her letters were full of news from home.",
    "The horses stood waiting in the yard.", "At last the carriage came into view.",
    "He had never seen so many books.", "The garden was silent in the moonlight.",
    "They sat together by the fire.", "Snow had covered the roads by morning.",
    "The ship sailed before the dawn.", "She read the note a second time.", "His voice was low and steady.",
    "The king listened without a word.", "Far away a bell began to ring.",
    "The path led down into the valley.", "Nobody spoke during the long supper.",
    "The children ran across the meadow.", "It was a cold and clear evening.",
    "The doctor arrived just after noon.", "A great storm was gathering in the west.",
    "The merchant counted his coins twice.", "We reached the town before nightfall.",
    "The lamp threw long shadows on the wall.", "Her brother had gone to sea.",
    "The forest grew darker as we walked.", "He folded the map and put it away.", "The clock struck eleven.",
    "There was no answer from the house.", "The bridge had been washed away.",
    "She smiled and shook her head.", "The soldiers marched through the gate.",
    "Spring came early that year.", "He wrote until the candle went out.",
)


# (female voice, male voice) per session; eSpeak NG voice names "<language>+<variant>".
LABELED_VOICES = (
    ("en+f1", "en+m1"), ("en-US+f2", "en-US+m2"), ("en+f3", "en+m3"), ("en-US+f4", "en-US+m4"),
    ("en+f5", "en+m5"), ("en-GB-x-rp+f2", "en-GB-x-rp+m3"), ("en-GB-scotland+f4", "en-GB-scotland+m4"),
    ("en-029+f1", "en-029+m5"),
)


CROSS_VOICES = (
    ("en-US+Annie", "en+m6"), ("en+Andrea", "en-US+m7"), ("en-GB-x-rp+steph", "en+Marco"),
    ("en-US+belinda", "en+travis"), ("en+linda", "en-US+Denis"), ("en-GB-x-rp+anika", "en+Storm"),
)


TALK_VOICES = (
    ("en-US+Michael", "male"), ("en+linda", "female"), ("en+Mike", "male"), ("en-US+aunty", "female"),
    ("en+Gene", "male"), ("en+anika", "female"), ("en-GB-scotland+iven", "male"), ("en-US+belinda", "female"),
    ("en+john", "male"), ("en+steph2", "female"), ("en-US+paul", "male"), ("en+robert", "male"),
    ("en-GB-x-rp+klatt", "male"), ("en-US+Alicia", "female"), ("en+Lee", "male"), ("en-US-nyc+f3", "female"),
)


BOOK_VOICES = (
    ("en+Alicia", "female"), ("en+quincy", "male"), ("en-US+steph3", "female"), ("en+Jacky", "male"),
    ("en+grandma", "female"), ("en-GB-x-rp+Lee", "male"), ("en-GB-scotland+f3", "female"),
    ("en-US-nyc+m8", "male"), ("en-029+f4", "female"), ("en+Andy", "male"), ("en-US+Andrea", "female"),
    ("en+rob", "male"),
)
# fmt: on


# Emotion-typical mean ratings (arousal, valence) on the 1-5 scale.
EMOTION_AV = {"angry": (4.2, 1.8), "happy": (3.8, 4.2), "neutral": (2.8, 3.0), "sad": (1.8, 1.8)}


@dataclass(frozen=True)
class Style:
    """How one corpus maps (arousal, valence) to prosody; ``cross`` differs so that it is a domain shift."""

    rate_arousal: float  # log-rate change per unit of scaled arousal
    pitch_arousal: float  # eSpeak pitch points (0-100 scale) per unit of scaled arousal
    pitch_valence: float
    range_arousal: float
    range_valence: float
    gain_arousal_db: float
    tilt_arousal: float  # spectral tilt (tense/lax voice) per unit of scaled arousal
    jitter: float  # scale of the per-utterance random variation
    noise_dbfs: tuple[float, float]  # background noise level range per session
    raters: int  # ratings averaged per utterance
    channel_lowpass_hz: float | None  # recording channel bandwidth (None: full band)


STYLES = {
    "labeled": Style(0.28, 16, 7, 22, 14, 6.0, 0.55, 1.0, (-62, -50), 3, None),
    "cross": Style(0.18, 22, 4, 14, 20, 4.0, 0.8, 1.3, (-56, -46), 5, 7000.0),
    "unlabeled": Style(0.25, 14, 6, 20, 12, 5.0, 0.5, 1.0, (-58, -46), 0, 8000.0),
    "unlabeled_books": Style(0.2, 10, 5, 14, 8, 4.0, 0.4, 0.8, (-66, -54), 0, None),
}


@dataclass(frozen=True)
class Prosody:
    rate_wpm: float
    pitch: float  # eSpeak 0-100, 50 = the voice's default
    pitch_range: float  # eSpeak 0-100, 50 = default, 0 = monotone
    word_gap: int  # extra pause between words, units of 10 ms
    gain_db: float  # level relative to the reference speech level
    tilt: float  # > 0 brighter (tense), < 0 darker (lax)


@dataclass(frozen=True)
class Item:
    """One utterance to synthesise."""

    utterance_id: str
    session: str
    speaker: str
    gender: str
    voice: str
    emotion: str
    arousal: float  # mean rating, NaN for unlabeled parts
    valence: float
    latent_arousal: float  # what drives the prosody (the raters see it through noise)
    latent_valence: float


@dataclass(frozen=True)
class Habit:
    """A speaker's own speaking habits, so that speakers differ beyond their voice."""

    log_rate: float
    pitch: float
    expressiveness: float  # scales the emotional pitch-range excursion
    level_db: float  # recording level of this speaker (microphone distance, gain)


def _habit(rng: np.random.Generator) -> Habit:
    return Habit(
        log_rate=float(rng.normal(0, 0.07)),
        pitch=float(rng.normal(0, 3.0)),
        expressiveness=float(np.exp(rng.normal(0, 0.2))),
        level_db=float(rng.uniform(-29, -23)),
    )


def _prosody(rng: np.random.Generator, item: Item, style: Style, habit: Habit, read_speech: bool) -> Prosody:
    """Emotion prosody as the literature describes it, driven by the utterance's latent arousal/valence."""
    a = (item.latent_arousal - 3.0) / 2.0
    v = (item.latent_valence - 3.0) / 2.0
    j = style.jitter
    log_rate = habit.log_rate + style.rate_arousal * a + rng.normal(0, 0.07 * j)
    rate = 170.0 * math.exp(log_rate) * (0.9 if read_speech else 1.0)
    pitch = 50 + habit.pitch + style.pitch_arousal * a + style.pitch_valence * v + rng.normal(0, 5 * j)
    excursion = habit.expressiveness * (style.range_arousal * a + style.range_valence * v)
    pitch_range = 50 + excursion + rng.normal(0, 7 * j)
    gain_db = style.gain_arousal_db * a + rng.normal(0, 2.0 * j)
    tilt = style.tilt_arousal * a + rng.normal(0, 0.15 * j)
    word_gap = 0
    if item.emotion == "angry":  # hot anger: wide, tense, loud, a little faster
        pitch_range += 10
        tilt += 0.25
        gain_db += 1.5
        rate *= 1.05
    elif item.emotion == "happy":  # high pitch, wide range
        pitch += 4
        pitch_range += 6
    elif item.emotion == "sad":  # slow, flat, quiet, lax, with pauses
        rate *= 0.92
        pitch_range -= 6
        tilt -= 0.2
        word_gap = int(rng.integers(1, 4))
    return Prosody(
        rate_wpm=float(np.clip(rate, 90, 320)),
        pitch=float(np.clip(pitch, 5, 95)),
        pitch_range=float(np.clip(pitch_range, 3, 100)),
        word_gap=word_gap,
        gain_db=float(np.clip(gain_db, -12, 10)),
        tilt=float(np.clip(tilt, -0.9, 0.9)),
    )


def _ratings(rng: np.random.Generator, latent: float, raters: int) -> float:
    """Mean of integer 1-5 ratings of ``raters`` raters who see ``latent`` through noise."""
    scores = np.clip(np.round(latent + rng.normal(0, 0.6, raters)), 1, 5)
    return float(np.mean(scores))


def _labeled_items(rng: np.random.Generator, part: str, sessions: int, per_cell: int) -> list[Item]:
    voices = LABELED_VOICES if part == "labeled" else CROSS_VOICES
    if sessions > len(voices):
        key = "labeled_sessions" if part == "labeled" else "cross_sessions"
        raise DemoCorpusError(f"{key}={sessions}: at most {len(voices)} sessions have voices")
    style = STYLES[part]
    prefix = "Ses" if part == "labeled" else "MSP"
    items = []
    for session in range(1, sessions + 1):
        for gender, voice in zip(("female", "male"), voices[session - 1], strict=True):
            speaker = f"{session}{gender[0].upper()}"
            for emotion in EMOTIONS:
                mean_arousal, mean_valence = EMOTION_AV[emotion]
                for index in range(per_cell):
                    latent_a = float(np.clip(mean_arousal + rng.normal(0, 0.35), 1, 5))
                    latent_v = float(np.clip(mean_valence + rng.normal(0, 0.35), 1, 5))
                    items.append(
                        Item(
                            utterance_id=f"{prefix}{session:02d}{gender[0].upper()}_{emotion}_{index:03d}",
                            session=str(session),
                            speaker=speaker,
                            gender=gender,
                            voice=voice,
                            emotion=emotion,
                            arousal=_ratings(rng, latent_a, style.raters),
                            valence=_ratings(rng, latent_v, style.raters),
                            latent_arousal=latent_a,
                            latent_valence=latent_v,
                        )
                    )
    return items


def _unlabeled_items(rng: np.random.Generator, part: str, groups: int, utterances: int) -> list[Item]:
    voices = TALK_VOICES if part == "unlabeled" else BOOK_VOICES
    key = "unlabeled_talks" if part == "unlabeled" else "books_readers"
    if not 1 <= groups <= len(voices):
        raise DemoCorpusError(f"{key}={groups}: choose 1 to {len(voices)} (one voice each)")
    letter = "T" if part == "unlabeled" else "B"
    spread = 0.35 if part == "unlabeled" else 0.22
    centre = (3.2, 3.2) if part == "unlabeled" else (2.8, 3.0)
    items = []
    for index in range(utterances):
        group = index % groups  # round robin, so every talk/reader gets a near-equal share
        voice, gender = voices[group]
        number = index // groups
        speaker = f"{letter}{group + 1:02d}"
        latent_a = float(np.clip(centre[0] + rng.normal(0, spread), 1, 5))
        latent_v = float(np.clip(centre[1] + rng.normal(0, spread), 1, 5))
        items.append(
            Item(
                utterance_id=f"{speaker}_{number:04d}",
                session=speaker if part == "unlabeled" else f"{speaker}C1",
                speaker=speaker,
                gender=gender,
                voice=voice,
                emotion="",
                arousal=math.nan,
                valence=math.nan,
                latent_arousal=latent_a,
                latent_valence=latent_v,
            )
        )
    return items


def _items(part: str, rng: np.random.Generator, sizes: dict[str, int]) -> tuple[list[Item], tuple[str, ...]]:
    if part == "labeled":
        items = _labeled_items(rng, part, sizes["labeled_sessions"], sizes["utterances_per_speaker_emotion"])
        return items, LABELED_SENTENCES
    if part == "cross":
        items = _labeled_items(
            rng, part, sizes["cross_sessions"], sizes["cross_utterances_per_speaker_emotion"]
        )
        return items, CROSS_SENTENCES
    if part == "unlabeled":
        return _unlabeled_items(
            rng, part, sizes["unlabeled_talks"], sizes["unlabeled_utterances"]
        ), TALK_SENTENCES
    return _unlabeled_items(rng, part, sizes["books_readers"], sizes["books_utterances"]), BOOK_SENTENCES
