"""Admin search that an index answers at a million rows.

Django's own search ORs `icontains` over every search field, across joins: at a million
negotiations that reads the whole table (seconds), and a term matching a row of a joined
table (a negotiation's title on the status changes' list) reads every child row too.
Here, for each list over a big table (`IndexedSearchMixin.search`):

- a term shaped like an identifier is looked up exactly first: a UUID (the record's id,
  or the negotiation it hangs off) answers from those ids alone; a reference
  (NEG-2024-0012) answers from the references when one matches, and is searched as text
  otherwise; a whole number also matches numeric ids, besides the text;
- each word of any other term matches the text columns by substring, case aside, as
  Django's search does (every word must match one column); on PostgreSQL each column has
  a trigram index (`gin_trgm_ops` over `UPPER(column)`, exactly what `icontains` emits:
  migrations exchanges 0020 and tracker 0012), used for words of three characters or
  more; a word of one or two characters has no trigram of its own, so it matches the
  start of a word instead ("UA" finds "UA-RU talks" and "the UAE", not "Guam"), which
  the same index answers (`WordStarts`): a substring of two letters read the whole list
  (6-8 s at a million negotiations);
- a word matching a related record (the negotiation of a status change, the group of a
  figure) is looked up in that record's table first: up to `RELATED_IDS` of them are
  passed as a list of ids (an index on the foreign key answers); more, and the list is
  filtered by a subquery while it is read in its own order (a common word finds its page
  early). Never a join that multiplies rows, so never a DISTINCT.

What a login may see is already in the queryset searched (`policy.restrict`): a row it may
not see is never found, whatever matched.
"""
import re
import uuid
from dataclasses import dataclass, field

from django.db import connections, models
from django.db.models import Lookup, OuterRef, Q, Subquery
from django.utils.text import smart_split, unescape_string_literal

from exchanges.admin import counts
from exchanges.policy import EachRowExists

#: Related ids looked up first and passed as a list; past this, a subquery.
RELATED_IDS = 500
#: The shape of a negotiation's reference (`services.negotiations._next_reference`).
REFERENCE = re.compile(r"^NEG-\d{4}-\d+$", re.IGNORECASE)
#: A bigint's digits at most: longer numbers are only text.
MAX_DIGITS = 18


#: A word shorter than this matches the start of a word (`WordStarts`), not any substring.
TRIGRAM = 3
#: What may stand before a word: the start of the text or one of these. pg_trgm reads an
#: explicit class of non-letters as a word boundary and answers from the trigram index;
#: `\W`, `\m` or a class with the typographic quotes („“”‘’) read every entry of it
#: (1.3 s over 300,000 titles against 0.2-0.5 ms, measured).
WORD_START = "(^|[][ \t\n,.;:/()\"'«»!?&+*#_-])"


class WordStarts(Lookup):
    """`column__word_starts=word`: a word of the text starts with `word`, case aside. On
    PostgreSQL `UPPER(column) ~ pattern`, the expression the trigram indexes cover."""

    lookup_name = "word_starts"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        word = re.escape(str(self.rhs))
        if connection.vendor == "postgresql":
            return f"UPPER({lhs}::text) ~ %s", [*lhs_params, WORD_START + word.upper()]
        return f"{lhs} REGEXP %s", [*lhs_params, "(?i)" + WORD_START + word]


class HoldsPhrase(Lookup):
    """`column__holds_phrase=phrase`: the phrase is in the text, case aside, tested row by
    row: on PostgreSQL `LOWER(column)`, which no trigram index covers (they are over
    `UPPER(column)`), so that the planner finds the rows from the phrase's words' indexes
    and only checks the phrase on them (`_word_q`)."""

    lookup_name = "holds_phrase"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        pattern = "%" + connection.ops.prep_for_like_query(str(self.rhs)) + "%"
        if connection.vendor == "postgresql":
            return f"LOWER({lhs}::text) LIKE %s", [*lhs_params, pattern.lower()]
        return f"{lhs} LIKE %s ESCAPE '\\'", [*lhs_params, pattern]  # SQLite: case aside already


models.CharField.register_lookup(WordStarts)
models.TextField.register_lookup(WordStarts)
models.CharField.register_lookup(HoldsPhrase)
models.TextField.register_lookup(HoldsPhrase)


@dataclass(frozen=True)
class Related:
    """A foreign key whose target is searched by its own `SearchSpec` (its text and
    references), the list keeping the rows that point to what was found."""

    fk: str
    model: str  # "app_label.ModelName"
    spec: "SearchSpec"


@dataclass(frozen=True)
class SearchSpec:
    """What a list's search box matches, and how."""

    #: Columns matched by substring, case aside (each with a trigram index on PostgreSQL).
    text: tuple = ()
    #: Id columns matched exactly when the term is a UUID or a whole number their type takes.
    ids: tuple = ("pk",)
    #: Columns matched exactly, whatever the term's shape (request ids): a btree index.
    codes: tuple = ()
    #: Reference columns matched exactly (upper-cased) when the term has a reference's shape.
    references: tuple = ()
    #: Foreign keys searched through their target (`Related`).
    related: tuple = field(default_factory=tuple)


def search_words(term):
    """The words of a term as Django's search splits them ("quoted words" kept whole)."""
    words = []
    for bit in smart_split(term):
        if bit[:1] in {'"', "'"} and bit[-1:] == bit[:1] and len(bit) > 1:
            bit = unescape_string_literal(bit)
        if bit.strip():
            words.append(bit.strip())
    return words


def as_uuid(term):
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


def as_number(term):
    term = term.strip()
    return int(term) if term.isdigit() and len(term) <= MAX_DIGITS else None


def _id_q(model, name, term):
    """`name` equals the term when the term can be a value of that column, else None."""
    column = model._meta.pk if name == "pk" else model._meta.get_field(name)
    target = getattr(column, "target_field", column)  # a foreign key: the type of its target
    found, number = as_uuid(term), as_number(term)
    if isinstance(target, models.UUIDField):
        return Q(**{name: found}) if found else None
    if isinstance(target, (models.AutoField, models.BigAutoField, models.IntegerField)):
        return Q(**{name: number}) if number is not None and number <= 2**63 - 1 else None
    if found:  # a text column holding ids (the audit trail's object id)
        return Q(**{name: str(found)})
    return Q(**{name: str(number)}) if number is not None else None


def exact_q(model, spec, term):
    """The exact matches of the whole term on ids, codes and references, or None."""
    conditions = [_id_q(model, name, term) for name in spec.ids]
    conditions += [Q(**{name: term}) for name in spec.codes]
    if REFERENCE.match(term):
        conditions += [Q(**{name: term.upper()}) for name in spec.references]
    found = as_uuid(term)
    if found:  # the id of the record a row hangs off
        conditions += [Q(**{relation.fk: found}) for relation in spec.related if _is_uuid_key(model, relation.fk)]
    conditions = [condition for condition in conditions if condition is not None]
    if not conditions:
        return None
    combined = Q()
    for condition in conditions:
        combined |= condition
    return combined


def _is_uuid_key(model, fk):
    target = getattr(model._meta.get_field(fk), "target_field", None)
    return isinstance(target, models.UUIDField)


def _word_q(model, spec, word):
    """One word on the text columns, and through each related record."""
    parts = [part for part in word.split() if len(part) >= TRIGRAM]
    if len(word.split()) > 1 and parts:
        return _phrase_q(model, spec, word, parts)
    lookup = "icontains" if len(word) >= TRIGRAM else "word_starts"
    condition = Q()
    for name in spec.text:
        condition |= Q(**{f"{name}__{lookup}": word})
    for relation in spec.related:
        condition |= _related_q(relation, word)
    return condition


def _phrase_q(model, spec, phrase, parts):
    """A quoted phrase ("Bench negotiation 518188", a title pasted whole): found by its
    words of three letters or more, each from its indexes as an unquoted word is, then
    checked whole on those rows. A substring of the whole phrase asks the trigram index
    for every trigram in it, common ones included: 44 ms for one title of a million
    sharing its first words, against 2 ms by its words."""
    words, whole = Q(), Q()
    for part in parts:
        word = Q()
        for name in spec.text:
            word |= Q(**{f"{name}__icontains": part})
        words &= word
    for name in spec.text:
        whole |= Q(**{f"{name}__holds_phrase": phrase})
    condition = words & whole if spec.text else Q(pk__in=[])
    for relation in spec.related:
        condition |= _related_q(relation, phrase)
    return condition


def _related_q(relation, word):
    from django.apps import apps

    target = apps.get_model(relation.model)
    matches = target._default_manager.filter(target_q(target, relation.spec, word)).order_by()
    ids = list(matches.values_list("pk", flat=True)[: RELATED_IDS + 1])
    if len(ids) <= RELATED_IDS:
        return Q(**{f"{relation.fk}__in": ids})
    return Q(**{f"{relation.fk}__in": Subquery(matches.values("pk"))})


def target_q(model, spec, word):
    """A word on a related record: its reference exactly when it has that shape and one
    matches, else its text columns."""
    if REFERENCE.match(word) and spec.references:
        exact = Q()
        for name in spec.references:
            exact |= Q(**{name: word.upper()})
        if model._default_manager.filter(exact).exists():
            return exact
    return _word_q(model, spec, word)


def search(queryset, spec, term, *, more=None):
    """(`queryset` narrowed to what the term finds, the same rows in a form cheaper to
    count or None): see the module's docstring. `more` may name further rows the whole
    term finds: a queryset of their ids, `values()` of one column (a negotiation's parties
    by name). The page asks it row by row (an EXISTS beside the text conditions, fenced: a
    page of 100 reads a few thousand rows in its order, where hashing a party's 60,000
    negotiations first took 24 ms); the count reads a union of ids instead, the text
    conditions from their indexes and the further ids, each part only up to the cap, so
    that it neither tests the text of every row it passes nor gathers all of a party's ids
    (a party in 60,000 of a million negotiations: 465 -> 64 -> 4 ms). On a database that
    cannot limit the parts of a UNION (SQLite), the whole union of ids."""
    term = term.strip()
    if not term:
        return queryset, None
    model = queryset.model
    exact = exact_q(model, spec, term)
    if exact is not None and as_uuid(term):
        return queryset.filter(exact), None
    if exact is not None and REFERENCE.match(term):
        found = queryset.filter(exact)
        if found.exists():
            return found, None
        exact = None
    condition = Q()
    for word in search_words(term):
        condition &= _word_q(model, spec, word)
    if exact is not None:
        condition |= exact
    if more is None:
        return queryset.filter(condition), None
    (column,) = more.query.values_select
    found = queryset.filter(condition | Q(EachRowExists(more.filter(**{column: OuterRef("pk")}))))
    if not connections[queryset.db].features.supports_slicing_ordering_in_compound:
        matched = model._default_manager.filter(condition).order_by().values("pk")
        return found, queryset.filter(pk__in=matched.union(more.order_by(), all=True))
    # Each part read only up to what the capped count needs: the rows the text finds
    # (from its indexes) and the further rows (a party's, read from its index, each
    # checked against what the login may see), CAP + 1 of each at most, so the count does
    # not grow with a party's 60,000 negotiations (hashing all their ids: 55-65 ms).
    # Both parts are within the queryset already, so their UNION (each row once) is
    # counted as it is, without looking each id up again.
    enough = counts.CAP + 1
    matched = queryset.filter(condition).order_by().values("pk")[:enough]
    further = more.order_by()
    if queryset.query.where:  # what the login may see, the list's filters
        further = further.filter(**{f"{column}__in": queryset.order_by().values("pk")})
    return found, matched.union(further[:enough])


class IndexedSearchMixin:
    """A ModelAdmin whose search box is answered by indexes (`search`): set `search` to the
    list's `SearchSpec`; `search_fields` only says there is a box (and what it covers)."""

    search = SearchSpec()

    def search_extra(self, request, term):
        """More rows the whole term finds: a queryset of their ids (one column), or None."""
        return None

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        found, counted = search(queryset, self.search, search_term, more=self.search_extra(request, search_term.strip()))
        # What the list's capped count reads instead, if anything (`counts.FlatListMixin`).
        request._search_count_queryset = counted
        return found, False


#: A negotiation by its reference (exactly, or a part of it) or title: the lists of the
#: records that hang off one search it so.
NEGOTIATION = SearchSpec(text=("reference", "title"), references=("reference",))
#: The negotiation a row hangs off, through the foreign key `negotiation`.
THROUGH_NEGOTIATION = Related("negotiation", "exchanges.Negotiation", NEGOTIATION)
