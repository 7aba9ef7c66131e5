"""The provider's annex table of codes and messages, and the Ack codes, held once."""

from __future__ import annotations

OK = 0
LOGIN_EMPTY = 1
PASSWORD_EMPTY = 2
BAD_CREDENTIALS = 3
NUMBER_MISSING = 6
NUMBER_NOT_10_DIGITS = 7
BLACKLISTED = 11
CREDIT_EXHAUSTED = 12
IP_NOT_ALLOWED = 14
SENDER_EMPTY = 16
NOT_ASSIGNED = 21
FULL_MVNO = 22
TOO_MANY_NUMBERS = 23
QUIET_HOURS = 24
COUNTRY_NOT_ALLOWED = 27
OVERFLOW = 29
DOMAIN_REFUSED = 30
SENDER_NOT_ALLOWED = 33
SMSLONG_INVALID = 34
INVALID_FILE = 102
INTERNAL = 999

MESSAGES: dict[int, str] = {
    0: "Votre message a bien été envoyé",
    1: "Le champ Login est vide",
    2: "Le champ PWD est vide",
    3: "Vos identifiants sont incorrects",
    6: "Vous devez saisir un numéro de téléphone",
    7: "Un numéro de téléphone est sur 10 chiffres",
    11: "Le numéro de téléphone est dans la liste noire",
    12: "Votre crédit de MT est épuisé",
    14: "L'adresse IP n'est pas autorisée",
    16: "L'émetteur ne peut pas être vide",
    21: "Le numéro de téléphone n'est pas attribué",
    22: "Le téléphone est attribué à un Full MVNO",
    23: "Le nombre maximum de téléphones par requête est de 500",
    24: "Pas d'envoi commercial entre 20h et 08h, ni les dimanches et jours fériés",
    27: "L'indicatif pays du téléphone n'est pas autorisé !",
    29: "Nous ne pouvons donner suite à votre demande (overflow)",
    30: "Erreur sur le domaine de connexion",
    33: "Cet émetteur n'est pas autorisé!",
    34: "La valeur de smslong doit être un entier !",
    100: "Vous devez saisir un type d'appel valide",
    101: "Les appels répondeurs ne fonctionnent pas avec les numéros de fixe !",
    102: "Vous devez saisir un fichier valide !",
    103: "L'émetteur doit être sur 10 chiffres !",
    104: "L'émetteur ne doit comporter que des chiffres !",
    105: "L'émetteur ne peut pas être un numéro en 08,",
    106: "Seuls les fichiers .wma, .wav sont acceptés !",
    107: "Votre fichier dépasse 30 secondes !",
    1000: "Le fichier a bien été importé",
    999: "Une erreur est survenue. Merci de contacter le service technique",
}

ACK_PROCESSED = 0
ACK_DUPLICATE = 1
ACK_MISSING_ID = 2

ACK_MESSAGES: dict[int, str] = {
    ACK_PROCESSED: "Votre email a bien ete traite",
    ACK_DUPLICATE: "emailId deja traite",
    ACK_MISSING_ID: "emailId non renseigne",
}


def message(code: int) -> str:
    """The annex message of a code; an unknown code (a magic number's) gets the generic one."""
    return MESSAGES.get(code, MESSAGES[INTERNAL])
