"""The signs of an instruction to send data out (see `exfil_instructions`) in other languages than
English: French, Spanish, Portuguese, Italian, German, Dutch, Swedish, Norwegian, Danish, Polish,
Czech, Turkish, Indonesian, Vietnamese, Russian, Ukrainian, Greek, Hebrew, Hindi, Thai, Chinese,
Japanese, Korean, Arabic and Persian. Planted instructions are written in whatever language the
attacker expects the model to obey, and the model obeys them all.

Words of languages that separate words with spaces are looked up in sets (after lower-casing, a
word counts when it starts with a listed stem, so that inflections need not be listed); Chinese,
Japanese, Korean, Arabic and Persian phrases are looked for as substrings. Either way the cost is
one pass over the window's words and a few substring searches, whatever the vocabulary's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ForeignSigns", "foreign_signs"]

_WORD = re.compile(r"[^\W\d_]+")

# Stems of verbs that move data: send, forward, transmit, upload, visit, open, append, add, show.
_VERB_STEMS = (
    "envoi", "envoy", "transmet", "transfér", "transfer", "ajout", "visit", "ouvr", "affich", "téléverse",
    "enví", "envia", "envie", "mand", "reenví", "agreg", "añad", "abr", "muestr", "sub", "encaminh", "adicion",
    "anex", "invi", "inoltr", "apr", "aggiung", "mostr", "carica", "send", "schick", "übermittl", "übertrag",
    "weiterleit", "leite", "öffne", "besuch", "füg", "hochlad", "lade", "stuur", "verstuur", "bezoek", "voeg",
    "upload", "wyślij", "wysłać", "prześlij", "przesłać", "otwórz", "dodaj", "gönder", "ilet", "yükle", "aç", "ekle",
    "отправ", "перешл", "пересл", "пришл", "присл", "передай", "переда", "загруз", "откр", "добав", "посет",
    "перейд", "покаж",
    # Swedish, Norwegian, Danish; Czech; Indonesian; Ukrainian; Greek.
    "skicka", "vidarebefordra", "videresend", "ladda", "öppna", "åpne", "åbn", "besök", "besøg", "lägg", "legg",
    "tilføj", "pošli", "pošlete", "odešli", "odešlete", "přepošli", "nahraj", "otevři", "přidej", "kirim", "teruskan",
    "unggah", "kunjungi", "tambahkan", "lampirkan", "надішл", "відправ", "перешли", "завантаж", "відкрий", "додай",
    "στείλ", "στειλ", "προώθησ", "ανέβασ", "άνοιξ", "πρόσθεσ",
)
# Verbs of scripts without spaces between words.
_VERB_PHRASES = (
    "发送", "发到", "发给", "转发", "上传", "访问", "打开", "附加", "添加", "发往", "传到", "送信", "送って", "送る",
    "転送", "アップロード", "開いて", "開く", "アクセス", "追加", "보내", "전송", "업로드", "열어", "방문", "أرسل",
    "ارسل", "حمّل", "افتح", "أضف", "بفرست", "ارسال کن", "باز کن",
    # Vietnamese (its words are syllables apart), Hebrew, Hindi, Thai.
    "gửi", "chuyển tiếp", "tải lên", "truy cập", "שלח", "העבר", "העלה", "פתח", "भेज", "अपलोड", "खोल", "ส่ง",
    "อัปโหลด", "เปิด",
)
# Someone else's data: the user, the conversation, their passwords, keys and credentials.
_DATA_STEMS = (
    "historiqu", "conversation", "discussion", "utilisat", "identifiant", "historial", "conversaci",
    "usuari", "contraseñ", "credencial", "chatverlauf", "verlauf", "unterhaltung", "gespräch", "benutzer", "nutzer",
    "passwort", "kennwort", "zugangsdat", "cronologi", "conversazion", "utent", "credenzial", "histórico",
    "conversa", "usuário", "senha", "gesprek", "gebruiker", "wachtwoord", "histori", "rozmow", "użytkownik",
    "hasł", "geçmiş", "sohbet", "kullanıcı", "şifre", "parola", "истори", "переписк", "разговор",  # noqa: RUF001
    "диалог",
    "пользовател", "парол", "учётн", "учетн", "ключ", "токен",
    "lösenord", "passord", "adgangskod", "historik", "konversation", "samtal", "användar", "bruker", "bruger",
    "heslo", "hesla", "uživatel", "konverzac", "riwayat", "percakapan", "obrolan", "pengguna", "kredensial",
    "історі", "розмов", "листуван", "користувач", "ιστορικ", "συνομιλ", "χρήστ", "κωδικ",
)
_DATA_PHRASES = (
    "mot de passe", "mots de passe", "clé api", "clave api", "chiave api",
    "对话", "聊天记录", "聊天", "用户", "密码", "凭证", "密钥", "历史记录", "会話", "履歴", "ユーザー", "パスワード",
    "認証情報", "대화", "사용자", "비밀번호", "سجل", "المحادثة", "المستخدم", "كلمة المرور", "تاریخچه", "گفتگو",
    "کاربر", "رمز عبور", "kata sandi", "lịch sử", "trò chuyện", "người dùng", "mật khẩu", "היסטורי", "שיחה",
    "משתמש", "סיסמ", "पासवर्ड", "उपयोगकर्ता", "इतिहास", "बातचीत", "चैट", "ประวัติ", "ผู้ใช้", "รหัสผ่าน", "การสนทนา",
)
# Words addressed to an AI: a vocative followed by a comma or a colon.
_ADDRESSED = re.compile(
    r"(?:^|[\s>.!?;(\[])(?:ia|ki|ii|ии|ai|assistant|assistante|assistente|asistente|assistent|ki-assistent|"
    r"asystent|asistan|asisten|asistent|ассистент|асистент|помощник|помічник|модель|нейросеть|βοηθέ|βοηθός)"
    r"\s*[,:\uff1a]"
)
_ADDRESSED_PHRASES = (
    "ai助手", "助手\uff1a", "助手:", "助手\uff0c", "人工智能助手", "アシスタントへ", "アシスタント:",
    "アシスタント\uff1a",
    "aiへ", "어시스턴트", "المساعد", "دستیار", "trợ lý", "सहायक", "עוזר", "ผู้ช่วย",
)
# Keeping the user unaware.
_COVERT_PHRASES = (
    "sans le dire", "sans lui dire", "sans prévenir", "sans informer", "sans en informer", "ne le dis pas",
    "ne dis rien",
    "discrètement", "sin decir", "sin decírselo", "no se lo digas", "no le digas", "sin avisar", "sin informar",
    "en secreto", "ohne den benutzer", "ohne die nutzer", "ohne es zu sagen", "ohne zu informieren", "nicht erwähnen",
    "heimlich", "unauffällig", "senza dirlo", "senza dire", "senza avvisare", "senza informare", "non dirlo",
    "di nascosto", "sem avisar", "sem dizer", "sem informar", "não diga", "não conte", "secretamente",
    "zonder te zeggen", "zonder het te melden", "bez informowania", "nie mów", "söyleme", "haber verme",
    "не говори", "не сообщай", "не сообщая", "не уведомляя", "тайно", "незаметно", "不要告诉", "不要通知", "悄悄",
    "秘密地", "言わないで", "知らせないで", "こっそり", "말하지 마", "알리지 마", "몰래", "دون إخبار", "بدون اطلاع",
    "به کاربر نگو", "utan att berätta", "utan att säga", "uten å si", "uten å fortelle", "uden at sige",
    "uden at fortælle", "i hemlighet", "i hemmelighet", "i hemmelighed", "bez informování", "neříkej", "tajně",
    "tanpa memberi tahu", "tanpa sepengetahuan", "diam-diam", "jangan beri tahu", "jangan memberi tahu",
    "không báo", "không nói", "không cho", "bí mật", "lặng lẽ", "не кажи", "не повідомляй", "таємно", "непомітно",
    "χωρίς να", "κρυφά", "בלי לספר", "בלי להודיע", "בסתר", "אל תספר", "न बताएं", "न बताए", "मत बताओ", "बिना बताए",  # noqa: RUF001
    "चुपके से", "โดยไม่บอก", "อย่าบอก",
)


@dataclass(frozen=True, slots=True)
class ForeignSigns:
    """Which signs the window shows in a language other than English."""

    verb: bool
    data: bool
    addressed: bool
    covert: bool


# Function words of the languages written in ASCII letters (an English text holds few of them).
_FUNCTION_WORDS = frozenset({
    "der", "die", "das", "und", "den", "dem", "nicht", "ist", "ohne", "le", "la", "les", "et", "des", "du", "une",
    "est", "pas", "à", "sans", "sem", "senza", "sin",
    "el", "los", "las", "del", "y", "es", "una", "il", "che", "di", "della", "het", "een", "van", "niet", "ik",
    "je", "ve", "bir", "bu", "ile", "nie", "jest", "sie", "os", "um", "uma", "não",
    "och", "att", "till", "inte", "utan", "för", "og", "til", "ikke", "uten", "uden", "på", "na", "że", "się", "bez",
    "oraz", "pro", "aby", "yang", "dan", "ke", "dari", "untuk", "tanpa", "dengan", "tolong", "của", "và", "cho",
    "tới", "không", "những", "các",
})
# Greek, Cyrillic, Hebrew, Arabic and Persian, Devanagari, Thai, the Japanese kana, CJK ideographs, Hangul.
_OTHER_SCRIPT = re.compile(
    "[\u0370-\u03ff\u0400-\u04ff\u0590-\u05ff\u0600-\u06ff\u0900-\u097f\u0e00-\u0e7f\u3040-\u30ff"
    "\u4e00-\u9fff\uac00-\ud7af]"
)
_ACCENTED = re.compile("[\u00c0-\u00ff\u0100-\u024f]")
_NONE = ForeignSigns(False, False, False, False)


def _has_stem(words: set[str], stems: tuple[str, ...]) -> bool:
    return any(word.startswith(stems) for word in words)


def _foreign(window: str, function_words: int) -> bool:
    """The window is in another language: two of its function words, or letters of another script
    (one function word will do beside accented Latin letters; an English text may hold "café")."""
    if function_words >= 2:
        return True
    if _OTHER_SCRIPT.search(window):
        return True
    return function_words == 1 and _ACCENTED.search(window) is not None


def foreign_signs(window: str) -> ForeignSigns:
    """The signs of `window` (lower-cased) in the languages above; none for a window that is not
    in one of them (the English vocabulary reads those, with its negations, and English words
    start with some of these stems)."""
    words = {word for word in _WORD.findall(window) if len(word) > 1}
    if not _foreign(window, len(words & _FUNCTION_WORDS)):
        return _NONE
    verb = _has_stem(words, _VERB_STEMS) or any(phrase in window for phrase in _VERB_PHRASES)
    data = _has_stem(words, _DATA_STEMS) or any(phrase in window for phrase in _DATA_PHRASES)
    addressed = bool(_ADDRESSED.search(window)) or any(phrase in window for phrase in _ADDRESSED_PHRASES)
    covert = any(phrase in window for phrase in _COVERT_PHRASES)
    return ForeignSigns(verb, data, addressed, covert)
