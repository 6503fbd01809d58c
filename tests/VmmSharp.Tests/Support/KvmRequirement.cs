using VmmSharp.Kvm;

namespace VmmSharp.Tests.Support;

/// <summary>
/// Skips a test that needs KVM where KVM is unusable, saying why; under VMMSHARP_REQUIRE_KVM=1 (as in CI)
/// such a skip is a failure instead.
/// </summary>
internal static class KvmRequirement
{
    private static readonly Lazy<string?> Unavailable = new(() => KvmSystem.IsAvailable(out string? reason) ? null : reason);

    public static void Ensure()
    {
        if (Unavailable.Value is not { } reason)
        {
            return;
        }
        if (Environment.GetEnvironmentVariable("VMMSHARP_REQUIRE_KVM") == "1")
        {
            Assert.Fail($"VMMSHARP_REQUIRE_KVM=1, but KVM is unusable here: {reason}");
        }
        Assert.Skip($"KVM is unusable here: {reason}");
    }
}
