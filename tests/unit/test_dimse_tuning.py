"""pynetdicom patched for our use (`openpacs.dimse.tuning`)."""

from __future__ import annotations

from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE

from openpacs.dimse import tuning


def _store_response() -> C_STORE:
    response = C_STORE()
    response.MessageIDBeingRespondedTo = 7
    response.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    response.AffectedSOPInstanceUID = "1.2.3"
    response.Status = 0x0000
    return response


def test_a_response_the_reactor_takes_goes_back_to_the_waiting_sender() -> None:
    """The reactor's race with a send on another thread (tuning's docstring): on an
    association we requested, the response is handed back, not dropped as unexpected."""
    tuning.install()
    assoc = Association(AE(), mode="requestor")
    response = _store_response()
    assoc._serve_request(response, 1)
    assert assoc.dimse.get_msg(block=False) == (1, response)


def test_an_association_we_accepted_still_serves_requests_only() -> None:
    tuning.install()
    assoc = Association(AE(), mode="acceptor")
    assoc._serve_request(_store_response(), 1)  # pynetdicom logs it as unexpected
    assert assoc.dimse.get_msg(block=False) == (None, None)
