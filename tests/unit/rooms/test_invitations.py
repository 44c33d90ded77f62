"""Invitations' bookkeeping: answers in time, late answers, expiry reported once."""

from __future__ import annotations

from rooms.invitations import Invitations

INVITER, ANN, BOB = 1, 2, 3


def test_an_answer_in_time_reaches_the_inviter_once():
    inv = Invitations()
    inv.send(7, INVITER, {ANN, BOB}, deadline=30.0)
    inv.receive(ANN, 7, INVITER, 30.0)
    inv.receive(BOB, 7, INVITER, 30.0)
    assert inv.answer(ANN, 7, now=10.0) == INVITER
    assert inv.answer(ANN, 7, now=11.0) is None  # answered already
    assert inv.answered(7, ANN) == INVITER
    assert inv.answered(7, ANN) is None  # a duplicate answer changes nothing
    assert inv.expire(now=31.0) == [(7, INVITER, BOB)]  # bob did not answer
    assert inv.expire(now=40.0) == []  # reported once
    assert inv.sent == {} and inv.received == {}


def test_a_late_answer_is_refused_and_an_unknown_one_too():
    inv = Invitations()
    inv.send(7, INVITER, {ANN}, deadline=30.0)
    inv.receive(ANN, 7, INVITER, 30.0)
    assert inv.answer(ANN, 7, now=30.0) is None  # at the deadline: too late
    assert inv.answer(BOB, 7, now=1.0) is None  # never invited
    assert inv.answer(ANN, 8, now=1.0) is None
    assert inv.expire(now=30.0) == [(7, INVITER, ANN)]


def test_the_last_answer_closes_the_invitation():
    inv = Invitations()
    inv.send(7, INVITER, {ANN}, deadline=30.0)
    assert inv.answered(7, ANN) == INVITER
    assert inv.sent == {}
    assert inv.expire(now=100.0) == []
