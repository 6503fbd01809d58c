using VmmSharp.Kvm;

namespace VmmSharp.Tests.Support;

/// <summary>
/// Skips a test that needs KVM where KVM is unusable, saying why; under VMMSHARP_REQUIRE_KVM=1 (as in CI)
/// such a skip is a failure instead. <see cref="SkipHostLimitation"/> is the other kind of skip: KVM works, but a probe
/// measured that this host's KVM cannot do what the test needs.
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

    /// <summary>
    /// Skips a test because a probe just measured that this host's KVM cannot do what it needs
    /// (<paramref name="measured"/> says what the probe saw). Decided: on a PVM host this stays a skip under
    /// VMMSHARP_REQUIRE_KVM=1, since it is a property of PVM that no build of ours can change, and the skip reason names
    /// the measurement; on a hardware-virtualization host (VMX/SVM), where the probe is expected to pass, it is a
    /// failure under VMMSHARP_REQUIRE_KVM=1, so a broken probe cannot hide the test there.
    /// </summary>
    public static void SkipHostLimitation(string measured)
    {
        Ensure();
        if (KvmSystem.Virtualization.Kind != HostVirtualizationKind.Pvm && Environment.GetEnvironmentVariable("VMMSHARP_REQUIRE_KVM") == "1")
        {
            Assert.Fail($"VMMSHARP_REQUIRE_KVM=1 on a {KvmSystem.Virtualization.Kind} host, where this should run, but: {measured}");
        }
        Assert.Skip($"not run: {measured} (host: {KvmSystem.Virtualization.Kind}; measured by a probe guest in this run)");
    }
}
