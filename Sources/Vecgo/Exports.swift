// What `import Vecgo` gives an application: this module (the façade, its options, errors,
// filters and results), the stores a database lives on (`Stores`, re-exported whole), and the
// few types of the layers below that Vecgo's public API uses, re-exported one declaration each
// (a scoped import, so their members are visible too). The rest of IndexCore, SegmentFormat and
// Tiering stays out of the application's namespace; scripts/api_check.sh records the public
// surface (api/*.txt).
@_exported public import Stores
@_exported public import enum IndexCore.Metric
@_exported public import enum SegmentFormat.MetadataValue
@_exported public import typealias SegmentFormat.Metadata
@_exported public import class Tiering.TierStats
@_exported public import class Tiering.LatencyHistogram
