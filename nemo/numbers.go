package nemo

// UDPPort is the DSMIPv6 port of the home agent (RFC 5555 §8). IP
// protocol numbers are package header's.
const UDPPort = 4191

// Mobility Header types (RFC 6275 §6.1 and later RFCs).
const (
	TypeBRR          uint8 = 0  // Binding Refresh Request
	TypeHoTI         uint8 = 1  // Home Test Init
	TypeCoTI         uint8 = 2  // Care-of Test Init
	TypeHoT          uint8 = 3  // Home Test
	TypeCoT          uint8 = 4  // Care-of Test
	TypeBU           uint8 = 5  // Binding Update
	TypeBA           uint8 = 6  // Binding Acknowledgement
	TypeBE           uint8 = 7  // Binding Error
	TypeExperimental uint8 = 11 // RFC 5096
	TypeHASwitch     uint8 = 12 // Home Agent Switch, RFC 5142
	TypeHeartbeat    uint8 = 13 // Heartbeat, RFC 5847
	TypeRevocation   uint8 = 16 // Binding Revocation Indication / Ack, RFC 5846
)

// Binding Update flags: the 16-bit word at offset 8 of a BU.
const (
	BUFlagA uint16 = 0x8000 // acknowledge requested
	BUFlagH uint16 = 0x4000 // home registration
	BUFlagL uint16 = 0x2000 // link-local address compatibility
	BUFlagK uint16 = 0x1000 // key management mobility capability
	BUFlagM uint16 = 0x0800 // MAP registration (HMIPv6)
	BUFlagR uint16 = 0x0400 // mobile router (NEMO, RFC 3963)
	BUFlagP uint16 = 0x0200 // proxy registration (PMIPv6)
	BUFlagF uint16 = 0x0100 // force UDP encapsulation (RFC 5555)
	BUFlagT uint16 = 0x0080 // TLV-header format (RFC 5845)
	// BUFlagO overwrites all bindings (RFC 5648). RFC 6602 uses the same bit
	// as B (bulk, PMIPv6); tshark shows it as B.
	BUFlagO uint16 = 0x0040
)

// Binding Acknowledgement flags: the octet at offset 7 of a BA.
const (
	BAFlagK uint8 = 0x80 // key management mobility capability
	BAFlagR uint8 = 0x40 // home agent supports mobile routers (RFC 3963)
	BAFlagP uint8 = 0x20 // proxy registration
	BAFlagT uint8 = 0x10 // TLV-header format
	BAFlagB uint8 = 0x08 // bulk binding update (RFC 6602)
)

// Binding Acknowledgement status codes (values < 128 accept the BU).
const (
	StatusAccepted              uint8 = 0
	StatusAcceptedPrefixDisc    uint8 = 1
	StatusMCoANotComplete       uint8 = 4 // see the per-BID status (RFC 5648)
	StatusMCoAReturnHome        uint8 = 5
	StatusUnspecified           uint8 = 128
	StatusProhibited            uint8 = 129 // administratively prohibited
	StatusInsufficientResources uint8 = 130
	StatusHomeRegNotSupported   uint8 = 131
	StatusNotHomeSubnet         uint8 = 132
	StatusNotHomeAgent          uint8 = 133 // not home agent for this mobile node
	StatusDADFailed             uint8 = 134
	StatusSeqOutOfWindow        uint8 = 135
	StatusRegTypeChange         uint8 = 139 // registration type change disallowed
	StatusMROpNotPermitted      uint8 = 140 // RFC 3963
	StatusInvalidPrefix         uint8 = 141
	StatusNotAuthorizedPrefix   uint8 = 142
	StatusForwardingSetupFailed uint8 = 143
	StatusIDMismatch            uint8 = 144 // RFC 4285: timestamp invalid
	StatusMesgIDRequired        uint8 = 145 // RFC 4285: replay protection option missing
	StatusAuthFailed            uint8 = 146 // RFC 4285
	StatusMCoAMalformed         uint8 = 164 // RFC 5648
	StatusMCoANonMCoAExists     uint8 = 165
	StatusMCoAProhibited        uint8 = 166
	StatusMCoAUnknownCoA        uint8 = 167
	StatusMCoABulkProhibited    uint8 = 168
	StatusMCoASimultaneousHome  uint8 = 169
	StatusInvalidCoA            uint8 = 174
)

// IPv4 Address Acknowledgement status codes (RFC 5555 §3.2.1).
const (
	IPv4StatusOK              uint8 = 0
	IPv4StatusUnspecified     uint8 = 128 // failure, reason unspecified
	IPv4StatusProhibited      uint8 = 129 // administratively prohibited
	IPv4StatusIncorrectHoA    uint8 = 130 // incorrect IPv4 home address
	IPv4StatusInvalidAddr     uint8 = 131 // invalid IPv4 address
	IPv4StatusDynamicNotAvail uint8 = 132 // dynamic IPv4 home address assignment not available
	IPv4StatusPrefixUnauth    uint8 = 133 // prefix allocation unauthorized
)

// Binding Error status codes (RFC 6275 §6.1.9).
const (
	BEUnknownBinding uint8 = 1 // unknown binding for Home Address option
	BEUnknownType    uint8 = 2 // unrecognized MH type
)

// Flow Identification option status codes (RFC 6089 §4.2).
const (
	FlowStatusOK            uint8 = 0
	FlowStatusProhibited    uint8 = 128
	FlowStatusRejected      uint8 = 129
	FlowStatusMalformed     uint8 = 130
	FlowStatusBIDNotFound   uint8 = 131
	FlowStatusFIDNotFound   uint8 = 132
	FlowStatusTSUnsupported uint8 = 133
)

// Binding Revocation (RFC 5846).
const (
	RevocationIndication uint8 = 1
	RevocationAck        uint8 = 2

	RevFlagP uint16 = 0x8000 // proxy binding
	RevFlagV uint16 = 0x4000 // IPv4 home address binding only
	RevFlagG uint16 = 0x2000 // global revocation
)

// Revocation Trigger values of a Binding Revocation Indication (RFC 5846
// §6.1) that a home agent serving mobile routers sends.
const (
	RevTriggerUnspecified    uint8 = 0
	RevTriggerAdministrative uint8 = 1
	RevTriggerUserInitiated  uint8 = 5 // User-Initiated Session(s) Termination
	RevTriggerAccessNetwork  uint8 = 6 // Access Network Session(s) Termination
	RevTriggerOutOfSync      uint8 = 7 // Possible Out-of-Sync BCE State
)

// Status values of a Binding Revocation Acknowledgement (RFC 5846 §6.2).
const (
	RevStatusSuccess           uint8 = 0
	RevStatusPartial           uint8 = 1
	RevStatusNoBinding         uint8 = 128 // Binding Does NOT Exist
	RevStatusIdentityRequired  uint8 = 131 // Revoked Mobile Nodes Identity Required
	RevStatusTriggerNotAllowed uint8 = 133 // Revocation Trigger NOT Supported
)

// Mobility option types (RFC 6275 §6.2 and later RFCs).
const (
	OptPad1            uint8 = 0
	OptPadN            uint8 = 1
	OptRefreshAdvice   uint8 = 2
	OptAltCoA          uint8 = 3
	OptNonceIndices    uint8 = 4
	OptBindingAuthData uint8 = 5
	OptMNP             uint8 = 6 // Mobile Network Prefix, RFC 3963
	OptMNID            uint8 = 8 // Mobile Node Identifier, RFC 4283
	OptAuth            uint8 = 9 // Mobility Message Authentication, RFC 4285
	OptMesgID          uint8 = 10
	OptExperimental    uint8 = 18 // RFC 5096
	OptVendor          uint8 = 19 // RFC 5094
	OptIPv4HoA         uint8 = 29 // RFC 5555
	OptIPv4AddrAck     uint8 = 30
	OptNATDetection    uint8 = 31
	OptIPv4CoA         uint8 = 32
	OptBID             uint8 = 35 // RFC 5648
	OptFlowSummary     uint8 = 44 // RFC 6089 (the registry's number, see doc.go)
	OptFlowID          uint8 = 45
)

// Flow Identification sub-option types (RFC 6089 §4.2.1).
const (
	SubPad1   uint8 = 0
	SubPadN   uint8 = 1
	SubBIDRef uint8 = 2
	SubTS     uint8 = 3
)

// Authentication option subtypes and the MN-HA MAC length (RFC 4285).
const (
	AuthMNHA  uint8 = 1
	AuthMNAAA uint8 = 2
	// MACLen is the length of HMAC-SHA1-96 authentication data.
	MACLen = 12
)

// MN-ID subtype for a Network Access Identifier (RFC 4283).
const MNIDSubtypeNAI uint8 = 1
