"""Results out, into the clinic's own systems: a DICOM Structured Report and an Encapsulated PDF
attached to the original study (sent to the site's PACS), and a FHIR R4 DiagnosticReport."""
