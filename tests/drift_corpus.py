"""Pairs of free-text answers, golden then new, the way a model rewords or changes them.

Each pair is labelled with what a reviewer would say: ``meaning`` (the new text says
something else: the gate must flag it) or ``paraphrase`` (it says the same thing in other
words: the gate must tolerate it), and with the class of fact that changed. The pairs of
class ``synonym`` change a common noun or verb for another and keep every fact: the
``facts`` rule cannot see them, which is what ``drift.judged`` is for.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple


class TextPair(NamedTuple):
    kind: Literal["meaning", "paraphrase"]
    fact: str
    old: str
    new: str


CORPUS: tuple[TextPair, ...] = (
    # -- negation and polarity --------------------------------------------------------
    TextPair("meaning", "negation", "Refund approved.", "Refund not approved."),
    TextPair(
        "meaning",
        "negation",
        "Please do restart the router before calling us again.",
        "Please do not restart the router before calling us again.",
    ),
    TextPair(
        "meaning",
        "negation",
        "The export now crashes when the report has more than one page.",
        "The export no longer crashes when the report has more than one page.",
    ),
    TextPair(
        "meaning",
        "negation",
        "The customer can sign in from the mobile app.",
        "The customer can't sign in from the mobile app.",
    ),
    TextPair(
        "meaning",
        "negation",
        "We never charge a fee for cancelling within the trial.",
        "We now charge a fee for cancelling within the trial.",
    ),
    TextPair(
        "meaning",
        "negation",
        "Your data was affected by the incident.",
        "None of your data was affected by the incident.",
    ),
    TextPair(
        "meaning",
        "negation",
        "The sync issue is caused by the new firewall rule.",
        "The sync issue is not caused by the new firewall rule.",
    ),
    # -- numbers, units and currencies ------------------------------------------------
    TextPair(
        "meaning",
        "number",
        "We will reply within 24 hours.",
        "We will reply within 48 hours.",
    ),
    TextPair(
        "meaning",
        "number",
        "A refund of 49.99 USD has been issued to your card.",
        "A refund of 4.99 USD has been issued to your card.",
    ),
    TextPair(
        "meaning",
        "number",
        "We refunded 120.00 of the 100.00 you were charged twice.",
        "We refunded 100.00 of the 120.00 you were charged twice.",
    ),
    TextPair(
        "meaning",
        "number",
        "Your plan includes 5 seats and 20 GB of storage.",
        "Your plan includes 5 seats and 200 GB of storage.",
    ),
    TextPair(
        "meaning",
        "number",
        "Dashboards load 30% slower since the update.",
        "Dashboards load 3% slower since the update.",
    ),
    TextPair(
        "meaning",
        "number",
        "The invoice total is $1,250.00 for three seats.",
        "The invoice total is $1,520.00 for three seats.",
    ),
    TextPair(
        "meaning",
        "number",
        "Expect the replacement to arrive in two business days.",
        "Expect the replacement to arrive in ten business days.",
    ),
    TextPair(
        "meaning",
        "number",
        "The replacement ships in 2-3 days.",
        "The replacement ships in 5-7 days.",
    ),
    # -- two numbers trading places inside a longer sentence ---------------------------
    TextPair(
        "meaning",
        "number",
        "The customer paid 120.00 USD but was promised 100.00 USD; the difference will be "
        "refunded within 5 days.",
        "The customer paid 100.00 USD but was promised 120.00 USD; the difference will be "
        "refunded within 5 days.",
    ),
    TextPair(
        "meaning",
        "number",
        "We charged you $49.99 for the annual plan and $4.99 for the monthly add-on, which "
        "you can cancel at any time.",
        "We charged you $4.99 for the annual plan and $49.99 for the monthly add-on, which "
        "you can cancel at any time.",
    ),
    TextPair(
        "meaning",
        "number",
        "A late fee of $15 was added to your balance of $240, which is now overdue by a week.",
        "A late fee of $240 was added to your balance of $15, which is now overdue by a week.",
    ),
    TextPair(
        "meaning",
        "number",
        "Standard shipping takes 5 days while express shipping takes 2 days for every order "
        "placed this month.",
        "Standard shipping takes 2 days while express shipping takes 5 days for every order "
        "placed this month.",
    ),
    TextPair(
        "meaning",
        "number",
        "Password reset links expire after 15 minutes, whereas verification links stay valid "
        "for 48 hours.",
        "Password reset links expire after 48 hours, whereas verification links stay valid "
        "for 15 minutes.",
    ),
    TextPair(
        "meaning",
        "number",
        "Your order shipped with 3 laptops and 12 monitors, and the invoice lists everything "
        "as delivered on time.",
        "Your order shipped with 12 laptops and 3 monitors, and the invoice lists everything "
        "as delivered on time.",
    ),
    TextPair(
        "meaning",
        "number",
        "Of the 250 orders placed yesterday, 30 are delayed because the warehouse scanner "
        "failed during the night shift.",
        "Of the 30 orders placed yesterday, 250 are delayed because the warehouse scanner "
        "failed during the night shift.",
    ),
    TextPair(
        "meaning",
        "number",
        "We assigned 3 agents to the outage for 5 hours before it was resolved.",
        "We assigned 5 agents to the outage for 3 hours before it was resolved.",
    ),
    TextPair(
        "meaning",
        "number",
        "On the outage, 3 agents worked for 5 hours.",
        "On the outage, 5 agents worked for 3 hours.",
    ),
    TextPair(
        "meaning",
        "number",
        "The team of 4 engineers spent 6 days on the migration of the billing database.",
        "The team of 6 engineers spent 4 days on the migration of the billing database.",
    ),
    # -- approximators keep the number, not a changed value ----------------------------
    TextPair(
        "meaning",
        "number",
        "Delivery should take about 24 hours.",
        "Delivery should take about 48 hours.",
    ),
    TextPair("meaning", "number", "It helps for an hour.", "It helps for about a day."),
    TextPair(
        "meaning",
        "number",
        "The battery lasts roughly 10 hours on a full charge.",
        "The battery lasts roughly 6 hours on a full charge.",
    ),
    TextPair(
        "meaning",
        "number",
        "The migration needs at least 3 days of downtime.",
        "The migration needs at most 3 days of downtime.",
    ),
    # -- dates and times --------------------------------------------------------------
    TextPair(
        "meaning",
        "date",
        "The maintenance window is on Tuesday night.",
        "The maintenance window is on Thursday night.",
    ),
    TextPair(
        "meaning",
        "date",
        "Your subscription renews on March 3.",
        "Your subscription renews on May 3.",
    ),
    TextPair(
        "meaning",
        "date",
        "The fix ships tomorrow.",
        "The fix ships today.",
    ),
    TextPair(
        "meaning",
        "time",
        "An engineer will call you at 3pm.",
        "An engineer will call you at 5pm.",
    ),
    TextPair(
        "meaning",
        "date",
        "The outage started on 2024-03-05 and was resolved the same day.",
        "The outage started on 2024-03-15 and was resolved the same day.",
    ),
    # -- names of people, products and organisations -----------------------------------
    TextPair(
        "meaning", "name", "Hi Hannah, thanks for writing in.", "Hi Helen, thanks for writing in."
    ),
    TextPair(
        "meaning",
        "name",
        "Acme Pulse dashboards are down for every user.",
        "Acme Vault dashboards are down for every user.",
    ),
    TextPair(
        "meaning",
        "name",
        "The card was declined by Stripe during the renewal.",
        "The card was declined by PayPal during the renewal.",
    ),
    # -- identifiers, emails, URLs and quotes ------------------------------------------
    TextPair(
        "meaning",
        "identifier",
        "Follow KB-0042 to reset the sync token.",
        "Follow KB-0024 to reset the sync token.",
    ),
    TextPair(
        "meaning",
        "identifier",
        "This is a duplicate of ticket T-1001.",
        "This is a duplicate of ticket T-1010.",
    ),
    TextPair(
        "meaning",
        "email",
        "Send the receipt to billing@acme.test and we will adjust it.",
        "Send the receipt to support@acme.test and we will adjust it.",
    ),
    TextPair(
        "meaning",
        "url",
        "The status page at https://status.acme.test/pulse shows the incident.",
        "The status page at https://status.acme.test/vault shows the incident.",
    ),
    TextPair(
        "meaning",
        "quote",
        'The customer reports "Export to PDF fails with error 500".',
        'The customer reports "Export to CSV fails with error 500".',
    ),
    # -- short labels -----------------------------------------------------------------
    TextPair("meaning", "text", "billing", "outage"),
    # -- beyond facts: a common noun or verb swapped for another ---------------------------
    TextPair(
        "meaning",
        "synonym",
        "We will send you a replacement unit this week.",
        "We will send you a refund this week.",
    ),
    # -- paraphrases that keep every fact -------------------------------------------------
    TextPair(
        "paraphrase",
        "paraphrase",
        "Acme Pulse has an outage: the customer reports that the dashboard is down.",
        "The customer says the Acme Pulse dashboard is down, which points to an outage.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Refund approved.",
        "The refund has been approved.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "We will reply within 24 hours.",
        "You can expect an answer from us in one day.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "A refund of 49.99 USD has been issued to your card.",
        "We have issued a $49.99 refund to your card.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Please don't restart the router before calling us again.",
        "Before you call us again, please do not restart the router.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Hi Hannah, thanks for writing in about the export problem.",
        "Hello Hannah, thank you for contacting us about the export issue.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "The export no longer crashes since version 2.3 was released.",
        "Since the release of version 2.3, the export has stopped crashing... it no longer fails.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Follow KB-0042 to reset the sync token, then sign in again.",
        "To reset the sync token, follow the steps in KB-0042 and sign back in.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "The maintenance window is on Tuesday night, starting at 10pm.",
        "Maintenance is scheduled for Tuesday night from 22:00.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "The customer cannot sign in after resetting the password.",
        "After a password reset, the customer is unable to log in.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Your subscription renews on March 3 for 5 seats.",
        "On March 3, your subscription for 5 seats will renew.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Send the receipt to billing@acme.test and we will adjust the invoice.",
        "If you email the receipt to billing@acme.test, we'll correct the invoice.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        'The customer reports "Export to PDF fails with error 500" on every report.',
        "Every report fails the same way, the customer reports: "
        '"Export to PDF fails with error 500".',
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Dashboards load 30% slower since the update, which frustrates the team.",
        "Since the update, the team is frustrated that dashboards load 30 percent slower.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "The card was declined by Stripe during the renewal, so the account was paused.",
        "Stripe declined the card at renewal time, and the account was paused as a result.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Expect the replacement to arrive in two business days.",
        "The replacement should reach you within 2 business days.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Thanks for your patience while we look into this.",
        "We appreciate your patience as we investigate.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "The customer wants the duplicate charge refunded.",
        "Getting the duplicate charge refunded is what the customer wants.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "An engineer will call you at 3pm tomorrow.",
        "Tomorrow at 3 PM, one of our engineers will give you a call.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "The status page at https://status.acme.test/pulse shows the incident.",
        "You can follow the incident on https://status.acme.test/pulse.",
    ),
    TextPair("paraphrase", "paraphrase", "billing", "Billing."),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Don't hesitate to contact us if the problem comes back.",
        "Feel free to reach out if the problem returns.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "The replacement ships in two to three days.",
        "Expect the replacement to ship within 2-3 days.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Restart the sync agent, then check the Acme Relay logs for errors.",
        "Check the logs of Acme Relay for errors after restarting the sync agent.",
    ),
    # -- the same numbers, each still with what it qualifies ---------------------------
    TextPair(
        "paraphrase",
        "paraphrase",
        "The customer paid 120.00 USD but was promised 100.00 USD; the difference will be "
        "refunded within 5 days.",
        "The customer was promised 100.00 USD but paid 120.00 USD; the difference will be "
        "refunded within 5 days.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "The customer paid 120.00 USD but was promised 100.00 USD; the difference will be "
        "refunded within 5 days.",
        "Although 100.00 USD was promised, 120.00 USD was paid by the customer, and the "
        "difference will be refunded within 5 days.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Standard shipping takes 5 days while express shipping takes 2 days for every order "
        "placed this month.",
        "For every order placed this month, express shipping takes 2 days while standard "
        "shipping takes 5 days.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Your order shipped with 3 laptops and 12 monitors, and the invoice lists everything "
        "as delivered on time.",
        "The invoice lists everything as delivered on time; your order shipped with 12 "
        "monitors and 3 laptops.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Of the 250 orders placed yesterday, 30 are delayed because the warehouse scanner "
        "failed during the night shift.",
        "Because the warehouse scanner failed during the night shift, 30 of the 250 orders "
        "placed yesterday are delayed.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "A late fee of $15 was added to your balance of $240, which is now overdue by a week.",
        "Your balance of $240, now overdue by a week, had a $15 late fee added to it.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "We will credit 20 USD to your account within 3 business days.",
        "Within 3 business days, your account will be credited with 20 USD.",
    ),
    # -- approximators and bounds added, removed or kept -------------------------------
    TextPair("paraphrase", "paraphrase", "It helps for an hour.", "It helps for about an hour."),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Delivery takes 24 hours.",
        "Delivery takes around 24 hours.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "We will reply within 24 hours.",
        "We will reply within approximately 24 hours.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "The job runs for roughly three hours.",
        "The job runs for 3 hours.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Nearly 200 users were affected by the outage.",
        "About 200 users were affected by the outage.",
    ),
    TextPair(
        "paraphrase", "paraphrase", "The import takes almost a week.", "The import takes a week."
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "We have some 50 tickets open.",
        "We have 50 open tickets.",
    ),
    TextPair(
        "paraphrase",
        "paraphrase",
        "Refunds take up to 10 days.",
        "Refunds take no more than 10 days.",
    ),
)


class GroundedPair(NamedTuple):
    """A pair whose new text is judged with the inputs of the step call that wrote it."""

    kind: Literal["meaning", "paraphrase"]
    fact: str
    old: str
    new: str
    inputs: dict[str, Any]


GROUNDED_CORPUS: tuple[GroundedPair, ...] = (
    # -- facts added that the inputs state: the step repeats what it was given --------
    GroundedPair(
        "paraphrase",
        "name",
        "The customer reports that the dashboard is down.",
        "The customer reports that the Acme Pulse dashboard is down.",
        {"text": "Our Acme Pulse dashboard has been down since this morning."},
    ),
    GroundedPair(
        "paraphrase",
        "identifier",
        "This ticket repeats an earlier one.",
        "This ticket repeats T-1001, which is still open.",
        {"ticket": {"subject": "Same as T-1001?", "body": "Nothing changed since then."}},
    ),
    GroundedPair(
        "paraphrase",
        "number",
        "The customer was charged twice for the renewal.",
        "The customer was charged 49.99 USD twice for the renewal.",
        {"messages": ["I was charged $49.99 twice.", "Please help."], "attempt": 2},
    ),
    GroundedPair(
        "paraphrase",
        "email",
        "Reply to the customer with the receipt.",
        "Reply to the customer at ana@acme.test with the receipt.",
        {"customer": {"name": "Ana", "contact": {"email": "ana@acme.test"}}},
    ),
    GroundedPair(
        "paraphrase",
        "date",
        "The export fails every week since the update.",
        "The export fails every Monday since the update.",
        {"text": "Every Monday the export fails, ever since the last update."},
    ),
    # -- facts the inputs do not state, and facts removed or replaced ------------------
    GroundedPair(
        "meaning",
        "name",
        "The customer reports that the dashboard is down.",
        "The customer reports that the Acme Vault dashboard is down.",
        {"text": "Our Acme Pulse dashboard has been down since this morning."},
    ),
    GroundedPair(
        "meaning",
        "name",
        "Acme Pulse dashboards are down for every user.",
        "Acme Vault dashboards are down for every user.",
        {"text": "Is it Acme Pulse or Acme Vault that is down? Both, I think."},
    ),
    GroundedPair(
        "meaning",
        "identifier",
        "This is a duplicate of T-1001.",
        "This is a duplicate of T-1002.",
        {"text": "Related: T-1001 and T-1002."},
    ),
    GroundedPair(
        "meaning",
        "number",
        "The customer was charged twice for the renewal.",
        "The customer was charged 59.99 USD twice for the renewal.",
        {"messages": ["I was charged $49.99 twice.", "Please help."]},
    ),
    GroundedPair(
        "meaning",
        "negation",
        "The customer can sign in from the mobile app.",
        "The customer cannot sign in from the mobile app.",
        {"text": "I cannot sign in from the mobile app."},
    ),
)
"""Pairs judged with the inputs of the call that wrote the new text: a fact the new text
adds that the inputs state (``paraphrase``) is grounded, one they do not, or a removed or
replaced fact (``meaning``), is drift."""
