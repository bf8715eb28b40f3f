"""VidyoSync's rules (seed 000): which VidyoReplay recordings Kaltura still lacks, what each
becomes there, and how the work is cut into multirequests.

Pure: no module here opens a socket. :mod:`~recstore.sync.metadata` holds the custom metadata
profile (its XSD ships beside it) and the XML of one recording; :mod:`~recstore.sync.plan`
decides per recording what is left to do and reads a multirequest's answers back into
per-recording outcomes. :mod:`recstore.workers.vidyo_sync` wires them to the two clients.
"""
