"""The Twilio Media Streams WebSocket (``/ws/twilio/``): the same VoiceSession as the widget, on a phone call.

Twilio connects after the voice webhook answered ``<Connect><Stream>``; the stream token (signed, single
use, 60 s) arrives as a custom parameter of the ``start`` message, so the session is set up then.
Refusals close the socket, which ends the call (docs/telephony.md lists the close codes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from channels.db import database_sync_to_async

from billing.metrics import QUOTA_REFUSALS
from billing.sessions import SessionRefusedError, open_session
from conversations.models import EndReason
from core import log_context
from core.shutdown import is_draining
from telephony.actions import call_slot, do_claim_call, do_end_call, do_end_unclaimed_call
from telephony.keypad import Keypad
from telephony.media_streams import Connected, Dtmf, Mark, Media, Start, Stop, parse_message
from telephony.models import PhoneNumber
from telephony.queries import (
    TwilioAccount,
    active_number_by_id,
    caller_visitor_id,
    destination_allowed,
    twilio_account,
)
from telephony.transport import TwilioTransport
from telephony.twilio_api import REST_TIMEOUT_S, start_recording, transfer_call
from tenants.tenancy import run_in_public, run_in_tenant
from voice.audio.phone import PHONE_RATE, PhoneAudioIn
from voice.consumers import VoiceConsumer, live_session_opened
from voice.metrics import VOICE_ERRORS
from voice.protocol import CloseCode, ErrorCode, ProtocolError, SessionStart
from voice.providers.registry import providers_for
from voice.queries import assistant_snapshot
from voice.recorder import ConversationRecorder
from voice.session import PhoneCall, VoiceSession
from voice.tokens import CallGrant, TokenError, redeem_call_token

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0  # Twilio sends ``start`` right after ``connected``


class TwilioMediaConsumer(VoiceConsumer):
    transport: TwilioTransport | None = None
    keypad: Keypad | None = None
    call_sid: str = ""
    _start_timer: asyncio.Task[None] | None = None
    _recording: asyncio.Task[None] | None = None
    _setting_up: bool = False
    _connected: bool = False  # before ``start``, one ``connected`` is all that may come

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.audio_in = PhoneAudioIn()

    async def connect(self) -> None:
        await self.accept()
        if is_draining():
            await self.close(code=int(CloseCode.SERVICE_RESTART))
            return
        self._start_timer = asyncio.create_task(self._expect_start())

    async def _expect_start(self) -> None:
        await asyncio.sleep(START_TIMEOUT_S)
        if self.session is None:
            logger.info("phone stream refused: no start within %s s", START_TIMEOUT_S)
            await self.close(code=int(CloseCode.INVALID_TOKEN))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        session = self.session
        try:
            if text_data is None:
                raise ProtocolError(ErrorCode.INVALID_JSON, "Twilio sends text messages only")
            message = parse_message(text_data)
        except ProtocolError as error:
            if session is None:
                await self._refuse_before_start(error)
            else:
                await session.reject(error)
            return
        if isinstance(message, Media):
            if session is None:
                await self._refuse_before_start(ProtocolError(ErrorCode.NOT_STARTED, "media before start"))
            elif message.track in ("inbound", "inbound_track", ""):
                await self._hear(session, message.payload)
            else:  # another track's audio is not heard, but counts against the flood limit like any message
                await session.admit()
        elif isinstance(message, Mark):
            if session is None:
                await self._refuse_before_start(ProtocolError(ErrorCode.NOT_STARTED, "mark before start"))
            elif self.transport is not None and await session.admit():
                self.transport.mark_heard(message.name)
        elif isinstance(message, Dtmf):
            if session is None:
                await self._refuse_before_start(ProtocolError(ErrorCode.NOT_STARTED, "dtmf before start"))
            elif self.keypad is not None and await session.admit():
                await self.keypad.press(message.digit)
        elif isinstance(message, Start):
            if session is not None:
                await session.reject(ProtocolError(ErrorCode.ALREADY_STARTED, "the stream has already started"))
            elif not self._setting_up:
                await self._start_or_end_call(message)
        elif isinstance(message, Stop):
            if session is not None:  # Twilio ends the stream of a call it is putting through: the transfer
                reason = EndReason.TRANSFERRED if session.transferring else EndReason.VISITOR_ENDED
                await session.end(reason, CloseCode.NORMAL, notify=False)
            await self.close(code=int(CloseCode.NORMAL))
        elif isinstance(message, Connected):
            if session is not None:
                await session.admit()  # counted like any message; it says nothing new
            elif self._connected:
                await self._refuse_before_start(ProtocolError(ErrorCode.ALREADY_STARTED, "connected twice"))
            else:
                self._connected = True

    async def _hear(self, session: VoiceSession, ulaw: bytes) -> None:
        """The caller's audio, two messages at a time (PhoneAudioIn); every message counts once against
        the session's flood limit: a held one here, a pair in ``handle_audio``."""
        pcm = self.audio_in.push(ulaw)
        if pcm is not None:
            await session.handle_audio(pcm)
        elif not await session.admit():
            self.audio_in.drop()

    async def _refuse_before_start(self, error: ProtocolError) -> None:
        """Before ``start`` only one ``connected`` and the ``start`` belong on the socket: anything else
        (media, marks, keys, junk, a second ``connected``) ends it, so an unauthenticated socket can send
        at most two messages, for at most START_TIMEOUT_S."""
        VOICE_ERRORS.labels(str(error.code)).inc()
        logger.info("phone stream refused before start: %s", error)
        await self.close(code=int(CloseCode.PROTOCOL_ABUSE))

    async def _start_or_end_call(self, start: Start) -> None:
        """Set the session up; if that crashes, the call ends with the stream (it is not left open)."""
        try:
            await self._start(start)
        except Exception:
            logger.exception("phone stream %s: setting the session up failed", start.call_sid)
            if self.session is None and self.call_sid:
                await run_in_public(do_end_call, call_sid=self.call_sid)
                self.call_sid = ""  # ended: disconnect has nothing more to do
            await self.close(code=int(CloseCode.INTERNAL_ERROR))

    async def _start(self, start: Start) -> None:
        self._setting_up = True
        if self._start_timer is not None:
            self._start_timer.cancel()
        redeemed: CallGrant | None = None
        try:
            # a token shown for another call is refused before it is used up: the real stream still gets in
            grant = redeemed = await database_sync_to_async(redeem_call_token)(
                start.parameters.get("token", ""), call_sid=start.call_sid
            )
            number = await run_in_public(active_number_by_id, grant.phone_number_id)
            if number is None or number.organization_id != grant.organization_id:
                raise TokenError(CloseCode.UNKNOWN_KEY, "the number no longer answers calls")
            tenant = number.organization
            assistant = await run_in_tenant(tenant, assistant_snapshot, grant.assistant_id)
            if assistant is None:
                raise TokenError(CloseCode.UNKNOWN_KEY, "the number's assistant no longer exists")
            call = await run_in_public(
                do_claim_call,
                call_sid=start.call_sid,
                organization_id=grant.organization_id,
                phone_number_id=number.pk,
                conversation_id=grant.conversation_id,
            )
            if call is None:
                raise TokenError(CloseCode.TOKEN_USED, "the call is another's, ended, or has its stream already")
            self.call_sid = start.call_sid  # from here on, however the stream ends, the call ends with it
            if call.first_message:  # an outbound call opens with the caller's words
                assistant = dataclasses.replace(assistant, greeting=call.first_message)
        except TokenError as refused:
            logger.info("phone stream refused (%s): %s", int(refused.close_code), refused)
            if redeemed is not None and redeemed.call_sid == start.call_sid:
                # the webhook started this call for the token's organization: it ends here (stored before
                # the socket closes), unless a stream has it (which then ends it)
                await run_in_public(
                    do_end_unclaimed_call, call_sid=start.call_sid, organization_id=redeemed.organization_id
                )
            await self.close(code=int(refused.close_code))
            return
        if is_draining():  # shutdown began while the stream was being checked: no session starts here
            logger.info("phone stream %s refused: the server is shutting down", start.call_sid)
            await self.close(code=int(CloseCode.SERVICE_RESTART))
            return  # the call was claimed: it ends with the stream (disconnect)
        try:
            quota = await open_session(tenant, member=call_slot(call.pk))  # a placed call's ringing slot
        except SessionRefusedError as refused:
            logger.info("phone stream refused for %s: %s", tenant.slug, refused.code)
            QUOTA_REFUSALS.labels(refused.code).inc()
            await self.close(code=int(CloseCode.QUOTA))
            return
        self.transport = TwilioTransport(start.stream_sid, send_text=self._send_text, close=self._close_stream)
        try:
            session = VoiceSession(
                conversation_id=grant.conversation_id,
                # caller ID can be faked: callers are remembered only where the number opts in
                visitor_id=caller_visitor_id(grant.caller) if number.remember_callers else "",
                origin=number.number,
                assistant=assistant,
                providers=providers_for(assistant.routing),
                transport=self.transport,
                recorder=ConversationRecorder(tenant, grant.conversation_id),
                quota=quota,
                call=PhoneCall(
                    caller=grant.caller,
                    call_sid=start.call_sid,
                    transfer=await self._transfer_for(number, start.call_sid),
                ),
            )
        except BaseException:
            await quota.release()
            raise
        self.session = session
        self.transport.on_played = session.played
        self.keypad = Keypad(session.handle_keys)
        log_context.bind(session=grant.conversation_id, organization=tenant.schema_name)
        live_session_opened(self)
        if number.record_calls:
            self._recording = asyncio.create_task(self._record(number, start.call_sid))
        await session.start(SessionStart(sample_rate=PHONE_RATE, visitor_id=session.visitor_id, text_only=False))

    async def _record(self, number: PhoneNumber, call_sid: str) -> None:
        """The number records its calls: ask Twilio to (off the loop; a failure is logged, the call goes on)."""
        try:
            account: TwilioAccount = await run_in_public(twilio_account, number)
            async with asyncio.timeout(REST_TIMEOUT_S + 1):
                await asyncio.to_thread(start_recording, account, call_sid=call_sid)
        except Exception:
            logger.exception("call %s: the recording could not be started", call_sid)

    async def _transfer_for(self, number: PhoneNumber, call_sid: str) -> Callable[[], Awaitable[None]] | None:
        """Where the hand-off tool puts the caller through: the number's transfer number, through the REST API."""
        if not number.transfer_to or not destination_allowed(number, number.transfer_to):
            return None
        account: TwilioAccount = await run_in_public(twilio_account, number)
        transport = self.transport
        assert transport is not None

        async def transfer() -> None:
            await transport.all_heard()  # the caller hears "putting you through" to its end first
            async with asyncio.timeout(REST_TIMEOUT_S + 1):
                await asyncio.to_thread(transfer_call, account, call_sid=call_sid, to=number.transfer_to)
            logger.info("call %s transferred", call_sid)

        return transfer

    async def disconnect(self, code: int) -> None:
        if self._start_timer is not None:
            self._start_timer.cancel()
        if self.keypad is not None:
            self.keypad.close()
        await super().disconnect(code)
        transferred = self.session is not None and self.session.transferring
        if self.call_sid and not transferred:  # a transferred call goes on: Twilio's status callback ends it
            await run_in_public(do_end_call, call_sid=self.call_sid)

    # -- what the transport sends: Twilio's JSON messages --
    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)  # never waits for Twilio (VoiceConsumer's sends say why)

    async def _close_stream(self, code: int) -> None:
        await self.close(code=code)
