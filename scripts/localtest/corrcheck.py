"""Correspondence's validations: the model binding of InitializeCorrespondencesExt and
InitializeAttachmentExt (ASP.NET's automatic 400, `errors` keyed by the C# property path as
ModelState keys it: `Correspondence.Content.MessageTitle`, `Recipients`, `IdempotentKey`), and
the handler's text rules (TextValidation.cs) and notification rules
(InitializeCorrespondenceHelper.cs), which answer with Errors.cs numbers.

The text rules approximate Markdig/ReverseMarkdown round trips: plain text (title, summary,
messageSender) may hold no HTML tag and no Markdown that changes the text (emphasis, headings,
links, images, block quotes, thematic breaks; lists are allowed since the list parser is off);
the body is Markdown and may hold no HTML outside code spans. The summary's plain-text rule is
disabled in the real code (#1331, a logged warning): here it is enforced (1004), being at least
as strict.
"""

import re
import uuid

from . import dates, parties

ORG_URN = "urn:altinn:organization:identifier-no:"
PERSON_URN = "urn:altinn:person:identifier-no:"
_ORG = re.compile(r"^(?:0192:|urn:altinn:organization:identifier-no:)\d{9}$")
_PERSON = re.compile(r"^(?:urn:altinn:person:identifier-no:)?\d{11}$")
_EMAIL = re.compile(r"^urn:altinn:person:idporten-email:.+$")
_SELF = re.compile(r"^urn:altinn:person:legacy-selfidentified:[^:]+$")
_EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
RECIPIENT_FORMAT = (
    "Recipient should be an organization number in the format '%s:organizationnumber' or the "
    "format countrycode:organizationnumber, for instance 0192:910753614, a national identity "
    "number, an idporten email URN in the format 'urn:altinn:person:idporten-email:email', or a "
    "legacy selfidentified URN in the format 'urn:altinn:person:legacy-selfidentified:username'"
    % ORG_URN[:-1])
LANGUAGES = ("nb", "nn", "en")
CHANNELS = ("Email", "Sms", "EmailPreferred", "SmsPreferred", "EmailAndSms")
TEMPLATES = ("CustomMessage", "GenericAltinnMessage")
REFERENCE_TYPES = ("Generic", "AltinnAppInstance", "AltinnBrokerFileTransfer",
                   "DialogportenDialogId", "DialogportenProcessId",
                   "DialogportenTransmissionId", "DialogportenTransmissionType")
ALLOWED_TYPES = (".doc", ".xls", ".docx", ".xlsx", ".ppt", ".pps", ".zip", ".pdf", ".html",
                 ".txt", ".xml", ".jpg", ".jpeg", ".gif", ".bmp", ".png", ".json", ".csv",
                 ".dcm", ".dicom")
_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(\..*)?$", re.I)


class Invalid(Exception):
    """Model binding failed: `errors` {ModelState key: [messages]}."""

    def __init__(self, errors):
        super().__init__("; ".join("%s: %s" % (k, v[0]) for k, v in errors.items()))
        self.errors = errors


def _add(errors, key, message):
    errors.setdefault(key, []).append(message)


def _length(errors, key, value, low, high):
    if value is None:
        return
    name = key.split(".")[-1]
    if not low <= len(value) <= high:
        if low:
            _add(errors, key, "The field %s must be a string with a minimum length of %d and a "
                              "maximum length of %d." % (name, low, high))
        else:
            _add(errors, key, "The field %s must be a string with a maximum length of %d."
                 % (name, high))


def _required(errors, key, value):
    if value is None or (isinstance(value, str) and not value.strip()):
        _add(errors, key, "The %s field is required." % key.split(".")[-1])
        return False
    return True


def _time(errors, key, value):
    """A DateTimeOffset: seconds since the epoch, or None."""
    if value is None:
        return None
    try:
        ticks = dates.parse_iso(value)
    except (ValueError, TypeError):
        _add(errors, "$." + key, "The JSON value could not be converted to "
                                 "System.Nullable`1[System.DateTimeOffset].")
        return None
    return (ticks - dates.EPOCH_TICKS) / dates.TICKS_PER_SECOND


def _guid(value):
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _typed(errors, doc, key, kind, path):
    value = doc.get(key)
    if value is not None and not isinstance(value, kind) or isinstance(value, bool) and \
            kind is not bool:
        _add(errors, "$." + path, "The JSON value could not be converted to %s. Path: $.%s"
             % (kind.__name__, path))
        return None
    return value


def check_recipients(errors, recipients):
    """RecipientListAttribute."""
    key = "Recipients"
    if not isinstance(recipients, list) or not all(isinstance(r, str) or r is None
                                                    for r in recipients):
        _add(errors, key, "Recipients Object is not of proper type")
        return
    if not recipients:
        _add(errors, key, "Recipients can not be empty")
        return
    if len(recipients) > 500:
        _add(errors, key, "Recipients can contain at most 500 recipients")
        return
    for r in recipients:
        if r is None or not r.strip():
            _add(errors, key, "Recipients can not contain null or empty values")
            return
        matched = [p.match(r) for p in (_ORG, _PERSON, _EMAIL, _SELF)]
        if not any(matched):
            _add(errors, key, RECIPIENT_FORMAT)
            return
        if matched[1] and not parties.valid_person_number(r.split(":")[-1]):
            _add(errors, key, "The given Recipient national identity number is not valid")
            return
        if matched[2] and not _EMAIL_ADDRESS.match(r.split(":", 4)[-1]):
            _add(errors, key, "The given Recipient email address is not valid")
            return


def validate_initialize(doc):
    """InitializeCorrespondencesExt's binding; returns the model (times as epoch seconds,
    GUIDs as strings, language defaulted to nb) or raises Invalid."""
    errors = {}
    if not isinstance(doc, dict):
        raise Invalid({"request": ["The request field is required."]})
    missing = [k for k in ("correspondence", "recipients") if k not in doc]
    if missing:
        raise Invalid({"$": ["JSON deserialization for type 'Altinn.Correspondence.API.Models."
                             "InitializeCorrespondencesExt' was missing required properties, "
                             "including the following: " + ", ".join(missing)],
                       "request": ["The request field is required."]})
    c = _typed(errors, doc, "correspondence", dict, "correspondence")
    recipients = doc.get("recipients")
    if recipients is None:
        _add(errors, "Recipients", "The Recipients field is required.")
    else:
        check_recipients(errors, recipients)
    existing = doc.get("existingAttachments") or []
    ids = []
    if not isinstance(existing, list) or any(_guid(x) is None for x in existing):
        _add(errors, "$.existingAttachments", "The JSON value could not be converted to "
                                              "System.Collections.Generic.List`1[System.Guid].")
    else:
        ids = [_guid(x) for x in existing]
    key = doc.get("idempotentKey")
    if key is not None:
        key = _guid(key) if isinstance(key, str) else None
        if key is None:
            _add(errors, "$.idempotentKey", "The JSON value could not be converted to "
                                            "System.Nullable`1[System.Guid].")
        elif key == str(uuid.UUID(int=0)):
            _add(errors, "IdempotentKey", "The idempotency key must be a valid non-empty GUID")
    model = {"recipients": recipients, "existingAttachments": ids, "idempotentKey": key}
    if c is None:
        if "correspondence" in doc and doc["correspondence"] is None:
            _add(errors, "Correspondence", "The Correspondence field is required.")
        raise Invalid(errors)
    model["correspondence"] = _correspondence(errors, c)
    if errors:
        raise Invalid(errors)
    return model


def _correspondence(errors, c):
    p = "Correspondence."
    out = dict(c)
    for key, length in (("resourceId", (1, 255)), ("sendersReference", (1, 4096)),
                        ("messageSender", (0, 255))):
        value = _typed(errors, c, key, str, "correspondence." + key)
        name = p + key[0].upper() + key[1:]
        if key != "messageSender" and not _required(errors, name, value):
            continue
        _length(errors, name, value, *length)
    if c.get("resourceId") and ":" in c["resourceId"].replace(
            "urn:altinn:resource:", "", 1):
        _add(errors, p + "ResourceId", "Invalid Resource identifier format")
    out["requestedPublishTime"] = _time(errors, "correspondence.requestedPublishTime",
                                        c.get("requestedPublishTime"))
    out["dueDateTime"] = _time(errors, "correspondence.dueDateTime", c.get("dueDateTime"))
    for flag in ("isConfirmationNeeded", "isConfidential", "allowForwarding",
                 "ignoreReservation"):
        _typed(errors, c, flag, bool, "correspondence." + flag)
    props = _typed(errors, c, "propertyList", dict, "correspondence.propertyList") or {}
    if any(not isinstance(v, str) for v in props.values()):
        _add(errors, "$.correspondence.propertyList", "The JSON value could not be converted "
                                                      "to System.String.")
    elif len(props) > 10:
        _add(errors, p + "PropertyList", "propertyList can contain at most 10 properties")
    else:
        for k, v in props.items():
            if len(k) > 50:
                _add(errors, p + "PropertyList", "propertyList Key can not be longer than 50. "
                                                 "Length:%d, KeyValue:%s" % (len(k), k))
                break
            if len(v) > 300:
                _add(errors, p + "PropertyList", "propertyList Value can not be longer than "
                                                 "300. Length:%d, Value:%s" % (len(v), v))
                break
    refs = _typed(errors, c, "externalReferences", list, "correspondence.externalReferences")
    if refs:
        if len(refs) > 10:
            _add(errors, p + "ExternalReferences",
                 "externalReferences can contain at most 10 references")
        for ref in refs:
            if not isinstance(ref, dict) or ref.get("referenceType") not in REFERENCE_TYPES or \
                    not isinstance(ref.get("referenceValue"), str):
                _add(errors, "$.correspondence.externalReferences", "The JSON value could not "
                     "be converted to Altinn.Correspondence.API.Models.ExternalReferenceExt.")
                break
            if ref["referenceType"] == "DialogportenTransmissionId":
                _add(errors, p + "ExternalReferences", "Cannot initialize a correspondence with "
                                                       "pre-existing transmission defined")
                break
    _typed(errors, c, "replyOptions", list, "correspondence.replyOptions")
    content = c.get("content")
    if content is None:
        _add(errors, p + "Content", "The Content field is required.")
    elif not isinstance(content, dict):
        _add(errors, "$.correspondence.content", "The JSON value could not be converted to "
             "Altinn.Correspondence.API.Models.InitializeCorrespondenceContentExt.")
    else:
        out["content"] = _content(errors, content)
    notification = c.get("notification")
    if notification is not None:
        if not isinstance(notification, dict):
            _add(errors, "$.correspondence.notification", "The JSON value could not be "
                 "converted to Altinn.Correspondence.API.Models."
                 "InitializeCorrespondenceNotificationExt.")
        else:
            _notification(errors, notification)
    return out


def _content(errors, content):
    p = "Correspondence.Content."
    out = dict(content)
    lang = _typed(errors, content, "language", str, "correspondence.content.language")
    if lang and lang.strip() and lang.lower() not in parties_languages():
        _add(errors, p + "Language", "The language must be a valid ISO 639-1 code")
    out["language"] = lang if lang and lang.strip() else "nb"
    title = _typed(errors, content, "messageTitle", str, "correspondence.content.messageTitle")
    if _required(errors, p + "MessageTitle", title):
        _length(errors, p + "MessageTitle", title, 1, 255)
    summary = _typed(errors, content, "messageSummary", str,
                     "correspondence.content.messageSummary")
    _length(errors, p + "MessageSummary", summary, 0, 255)
    body = _typed(errors, content, "messageBody", str, "correspondence.content.messageBody")
    if _required(errors, p + "MessageBody", body):
        _length(errors, p + "MessageBody", body, 1, 30000)
    atts = _typed(errors, content, "attachments", list, "correspondence.content.attachments")
    out["attachments"] = []
    for i, a in enumerate(atts or []):
        if not isinstance(a, dict):
            _add(errors, "$.correspondence.content.attachments[%d]" % i,
                 "The JSON value could not be converted to Altinn.Correspondence.API.Models."
                 "InitializeCorrespondenceAttachmentExt.")
            continue
        attachment_model(errors, a, "%sAttachments[%d]." % (p, i))
        out["attachments"].append(a)
    return out


def parties_languages():
    """ISO 639-1 codes the binding accepts (the handler then allows only nb, nn, en)."""
    return ("nb", "nn", "en", "no", "se", "sv", "da", "de", "fr", "es", "fi", "pl", "uk",
            "ar", "so", "ti", "ur", "lt", "it", "nl", "pt", "ru", "zh")


def attachment_model(errors, a, prefix=""):
    """InitializeAttachmentExt / InitializeCorrespondenceAttachmentExt binding."""
    for key, kind in (("fileName", str), ("displayName", str), ("sendersReference", str),
                      ("checksum", str), ("isEncrypted", bool), ("expirationInDays", int),
                      ("resourceId", str)):
        _typed(errors, a, key, kind, (prefix or "") + key)
    if _required(errors, prefix + "SendersReference", a.get("sendersReference")):
        _length(errors, prefix + "SendersReference", a.get("sendersReference"), 1, 4096)
    if isinstance(a.get("fileName"), str):
        _length(errors, prefix + "FileName", a["fileName"], 0, 255)
    if isinstance(a.get("displayName"), str):
        _length(errors, prefix + "DisplayName", a["displayName"], 0, 255)
    checksum = a.get("checksum")
    if isinstance(checksum, str) and checksum and not re.match(r"^[0-9a-f]{32}$", checksum):
        _add(errors, prefix + "Checksum", "The checksum, if used, must be a MD5 hash of 32 "
                                          "lower case hexadecimal characters")


def file_name_error(name):
    """AttachmentHelper.ValidateAttachmentName, in its order: 2010, 2011, 2013, 2012, 2021."""
    if name is None or not name.strip():
        return 2010
    if len(name) > 255:
        return 2011
    if not name.lower().endswith(ALLOWED_TYPES):
        return 2013
    if re.search(r'[<>:"/\\|?*\x00-\x1f]', name):
        return 2012
    if _RESERVED.match(name):
        return 2021
    return None


# -- the handler's text rules ---------------------------------------------------------------

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>|<!--")
_MARKDOWN = [
    re.compile(r"(^|\n)\s{0,3}#{1,6}(\s|$)"),                  # ATX heading
    re.compile(r"(^|\n)\s{0,3}>"),                            # block quote
    re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"),             # strong
    re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?!\*)"),   # emphasis *x*
    re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"),  # emphasis _x_
    re.compile(r"!?\[[^\]\n]*\]\([^)\n]*\)"),                   # link or image
    re.compile(r"(^|\n)\s{0,3}([-*_])(\s*\2){2,}\s*(\n|$)"),    # thematic break
    re.compile(r"\S[^\n]*\n\s{0,3}=+\s*(\n|$)"),                # setext heading
    re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"),                      # strikethrough
]
_CODE = re.compile(r"```.*?```|``.*?``|`[^`]*`", re.S)


def is_plain_text(text):
    if text is None:
        return True
    text = text.replace("`", "").replace("\\", "")
    return not _TAG.search(text) and not any(p.search(text) for p in _MARKDOWN)


def is_markdown(text):
    """Markdown (CommonMark) with no HTML outside code."""
    if text is None:
        return True
    return not _TAG.search(_CODE.sub("", text))


def content_error(correspondence):
    """ValidateCorrespondenceContent and ValidateCorrespondenceSender: an Errors.cs number."""
    content = correspondence.get("content")
    if content is None:
        return 1019
    title = content.get("messageTitle")
    if title is None or not title.strip():
        return 1020
    if not is_plain_text(title):
        return 1002
    if len(title) > 255:
        return 1037
    summary = content.get("messageSummary")
    if summary and len(summary) > 255:
        return 1042
    if not is_plain_text(summary):
        return 1004
    body = content.get("messageBody") or ""
    if not is_markdown(body):
        return 1003
    if len(body) < 1:
        return 1021
    if len(body) > 30000:
        return 1022
    if (content.get("language") or "nb").lower() not in LANGUAGES:
        return 1023
    sender = correspondence.get("messageSender")
    if sender and not is_plain_text(sender):
        return 1039
    return None


def reply_options_error(correspondence):
    """ValidateReplyOptions: ≤255, a well-formed absolute URI, https."""
    for option in correspondence.get("replyOptions") or []:
        url = option.get("linkURL") if isinstance(option, dict) else None
        if not isinstance(url, str) or len(url) > 255 or \
                not re.match(r"^https://[^\s/?#]+([/?#]\S*)?$", url, re.I):
            return 1035
    return None


def _notification(errors, n):
    p = "Correspondence.Notification."
    channel = n.get("notificationChannel")
    if channel not in CHANNELS:
        _add(errors, p + "NotificationChannel", "The NotificationChannel field is required."
             if channel is None else "The value '%s' is not valid." % channel)
    template = n.get("notificationTemplate")
    if template is not None and template not in TEMPLATES:
        _add(errors, "$.correspondence.notification.notificationTemplate",
             "The JSON value could not be converted to Altinn.Correspondence.API.Models.Enums."
             "NotificationTemplateExt.")
    for key, high in (("emailSubject", 512), ("emailBody", 10000), ("smsBody", 2144),
                      ("reminderEmailSubject", 512), ("reminderEmailBody", 10000),
                      ("reminderSmsBody", 2144)):
        value = n.get(key)
        if value is not None and not isinstance(value, str):
            _add(errors, "$.correspondence.notification." + key,
                 "The JSON value could not be converted to System.String.")
        else:
            _length(errors, p + key[0].upper() + key[1:], value, 0, high)


def notification_error(n, recipient_count=1):
    """ValidateNotification: ValidateCustomRecipient (3022, 3017), then for a CustomMessage
    ValidateNotificationContent (3002-3007, 3024, 3025)."""
    if not n:
        return None
    custom = n.get("customRecipients") or []
    if n.get("overrideRegisteredContactInformation") and not custom:
        return 3022
    if custom and recipient_count > 1:
        return 3017
    if (n.get("notificationTemplate") or "CustomMessage") != "CustomMessage":
        return None

    def has(*keys):
        return all(isinstance(n.get(k), str) and n[k].strip() for k in keys)

    email, sms = ("emailSubject", "emailBody"), ("smsBody",)
    remind_email, remind_sms = ("reminderEmailSubject", "reminderEmailBody"), \
        ("reminderSmsBody",)
    channel = n.get("notificationChannel")
    remind = n.get("sendReminder")
    rchannel = n.get("reminderNotificationChannel") or channel
    rules = {"Email": (email, 3002), "Sms": (sms, 3004),
             "EmailPreferred": (email + sms, 3006), "SmsPreferred": (email + sms, 3006),
             "EmailAndSms": (email + sms, 3024)}
    reminders = {"Email": (remind_email, 3003), "Sms": (remind_sms, 3005),
                 "EmailPreferred": (remind_email + remind_sms, 3007),
                 "SmsPreferred": (remind_email + remind_sms, 3007),
                 "EmailAndSms": (remind_email + remind_sms, 3025)}
    keys, code = rules.get(channel, ((), None))
    if code and not has(*keys):
        return code
    if remind:
        keys, code = reminders.get(rchannel, ((), None))
        if code and not has(*keys):
            return code
    return None

