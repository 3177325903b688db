import LogoutCore

extension CrocanteError {
    /// The process exit status for this error (sysexits.h). The systemd unit's
    /// `RestartPreventExitStatus=78` relies on configuration errors being 78.
    public var exitCode: Int32 {
        switch self {
        case .missingSetting, .invalidSetting, .cannotSeal:
            return 78  // EX_CONFIG
        case .cannotListen, .cannotStart:
            return 71  // EX_OSERR
        }
    }
}
