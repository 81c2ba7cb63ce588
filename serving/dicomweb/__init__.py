"""PACS integration over DICOMweb (docs/pacs.md).

    PACS ──STOW-RS──► routes.py ──► intake.py (is it a frontal CR/DX we can decode?) ──► spool.py incoming/
                                                                                          │ worker.py
                  the same data plane as /v1/predict (serving.scoring.Scorer) ◄───────────┘
                  ──► report.py (TID 1500 Comprehensive SR; heatmap.py: optional Secondary Capture)
                  ──► spool.py outbox/ ──► delivery.py (STOW-RS by dicomweb-client, retried with backoff) ──► PACS

The request is answered once every accepted instance is on disk; a restart loses nothing. Result UIDs are
derived from the source instance and the model version (uids.py), so a resend never makes a second SR.
"""
