// The façade's users need the metric, metadata and tier-counter types without importing the
// layers below.
@_exported public import IndexCore
@_exported public import SegmentFormat
@_exported public import Tiering
