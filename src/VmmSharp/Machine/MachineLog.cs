using Microsoft.Extensions.Logging;

namespace VmmSharp.Machine;

/// <summary>Log messages of the machine runner.</summary>
internal static partial class MachineLog
{
    [LoggerMessage(Level = LogLevel.Information, Message = "guest reset: rebooting (reboot {Count})")]
    public static partial void LogGuestRebooting(this ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Debug, Message = "no helper process for the VM's teardown (no cat found, or spawning failed): the exit waits for it")]
    public static partial void LogTeardownNotHandedOff(this ILogger logger);
}
