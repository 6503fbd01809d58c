using System.Runtime.InteropServices;
using VmmSharp.Interop;

namespace VmmSharp.Kvm;

/// <summary>
/// The KVM subsystem, opened through <c>/dev/kvm</c>: API version, capabilities, supported CPUID,
/// and the factory for VMs.
/// </summary>
/// <remarks>
/// Threading: every member may be called from any thread. After <see cref="Dispose"/> they throw
/// <see cref="ObjectDisposedException"/> (<see cref="GetSupportedCpuid"/> keeps serving the leaves it fetched).
/// </remarks>
public sealed unsafe class KvmSystem : IDisposable
{
    /// <summary>The only KVM API version there has ever been.</summary>
    public const int ExpectedApiVersion = 12;

    /// <summary>The device path.</summary>
    public const string DevicePath = "/dev/kvm";

    private readonly SafeFileDescriptor _fd;
    private KvmCpuidEntry[]? _supportedCpuid;

    private KvmSystem(SafeFileDescriptor fd, int vcpuMmapSize)
    {
        _fd = fd;
        VcpuMmapSize = vcpuMmapSize;
    }

    /// <summary>The size of each vCPU's <c>kvm_run</c> mapping.</summary>
    public int VcpuMmapSize { get; }

    /// <summary>What kind of virtualization serves <c>/dev/kvm</c> on this host.</summary>
    public static HostVirtualization Virtualization => HostVirtualization.Detect();

    /// <summary>Opens <c>/dev/kvm</c> and checks its API version.</summary>
    /// <exception cref="KvmUnavailableException">The device is missing, not accessible, or speaks another API version.</exception>
    public static KvmSystem Open() => Open(DevicePath);

    /// <summary>Opens the KVM device at <paramref name="path"/> (tests use other paths to see the errors).</summary>
    internal static KvmSystem Open(string path)
    {
        int fd = Libc.Open(path, Libc.O_RDWR | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                Libc.ENOENT => new KvmUnavailableException(
                    $"{path} does not exist: this kernel has no KVM, or its module is not loaded. " +
                    "Load kvm_intel, kvm_amd or kvm_pvm (modprobe), or run on a host with virtualization enabled."),
                Libc.EACCES or Libc.EPERM => new KvmUnavailableException(
                    $"no permission to open {path}: run as root or add your user to the 'kvm' group " +
                    "(sudo usermod -aG kvm $USER, then log in again)."),
                _ => new KvmUnavailableException($"cannot open {path}: {Libc.ErrorText(errno)} (errno {errno})."),
            };
        }
        var handle = new SafeFileDescriptor(fd);
        try
        {
            int version = Libc.Ioctl(handle, KvmIoctl.GetApiVersion, 0);
            if (version != ExpectedApiVersion)
            {
                throw new KvmUnavailableException(
                    $"{path} speaks KVM API version {version}; VmmSharp needs version {ExpectedApiVersion} (is it a KVM device?).");
            }
            int mmapSize = Libc.Ioctl(handle, KvmIoctl.GetVcpuMmapSize, 0);
            if (mmapSize <= 0)
            {
                throw new KvmException(KvmIoctl.GetVcpuMmapSize, Marshal.GetLastPInvokeError(), null);
            }
            return new KvmSystem(handle, mmapSize);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Whether KVM can be opened here, and if not, why.</summary>
    public static bool IsAvailable(out string? reason)
    {
        try
        {
            using KvmSystem kvm = Open();
            reason = null;
            return true;
        }
        catch (KvmUnavailableException e)
        {
            reason = e.Message;
            return false;
        }
    }

    /// <summary>The API version <c>/dev/kvm</c> reports.</summary>
    public int ApiVersion
    {
        get
        {
            ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
            return Libc.Ioctl(_fd, KvmIoctl.GetApiVersion, 0);
        }
    }

    /// <summary>What <c>KVM_CHECK_EXTENSION</c> says of <paramref name="capability"/>: 0 when absent, else 1 or a limit.</summary>
    public int CheckExtension(KvmCapability capability)
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        int r = Libc.Ioctl(_fd, KvmIoctl.CheckExtension, (nuint)capability);
        return r < 0 ? 0 : r;
    }

    /// <summary>Whether the host has <paramref name="capability"/>.</summary>
    public bool Has(KvmCapability capability) => CheckExtension(capability) > 0;

    /// <summary>
    /// The CPUID leaves KVM can present to a guest (<c>KVM_GET_SUPPORTED_CPUID</c>), as a fresh copy the caller may
    /// change. They do not change while the system is open, so the ioctl is made once.
    /// </summary>
    public KvmCpuidEntry[] GetSupportedCpuid() => (KvmCpuidEntry[])(_supportedCpuid ??= FetchSupportedCpuid()).Clone();

    private KvmCpuidEntry[] FetchSupportedCpuid()
    {
        for (int n = 256; ; n *= 2)
        {
            int bytes = 8 + (n * sizeof(KvmCpuidEntry));
            byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
            try
            {
                *(uint*)buffer = (uint)n;
                if (Libc.Ioctl(_fd, KvmIoctl.GetSupportedCpuid, buffer) == 0)
                {
                    int count = (int)*(uint*)buffer;
                    return new ReadOnlySpan<KvmCpuidEntry>(buffer + 8, count).ToArray();
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno != 7 /* E2BIG */ || n >= 4096)
                {
                    throw new KvmException(KvmIoctl.GetSupportedCpuid, errno, $"nent={n}");
                }
            }
            finally
            {
                NativeMemory.Free(buffer);
            }
        }
    }

    /// <summary>The MSRs KVM saves and restores for a vCPU (<c>KVM_GET_MSR_INDEX_LIST</c>).</summary>
    public uint[] GetMsrIndexList() => FetchMsrList(KvmIoctl.GetMsrIndexList);

    /// <summary>
    /// The feature MSRs KVM knows (<c>KVM_GET_MSR_FEATURE_INDEX_LIST</c>, such as <c>IA32_ARCH_CAPABILITIES</c>); empty
    /// where the host lacks <c>KVM_CAP_GET_MSR_FEATURES</c>.
    /// </summary>
    public uint[] GetMsrFeatureIndexList() => Has(KvmCapability.GetMsrFeatures) ? FetchMsrList(KvmIoctl.GetMsrFeatureIndexList) : [];

    private uint[] FetchMsrList(uint request)
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        uint count = 0;
        // The first call with no room reports the count (E2BIG); the list may grow between the calls, so loop.
        for (int attempt = 0; attempt < 4; attempt++)
        {
            byte* buffer = (byte*)NativeMemory.AllocZeroed(4 + (count * 4));
            try
            {
                *(uint*)buffer = count;
                if (Libc.Ioctl(_fd, request, buffer) == 0)
                {
                    return new ReadOnlySpan<uint>(buffer + 4, (int)*(uint*)buffer).ToArray();
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno != 7 /* E2BIG */ || *(uint*)buffer > 65536)
                {
                    throw new KvmException(request, errno, $"nmsrs={count}");
                }
                count = *(uint*)buffer;
            }
            finally
            {
                NativeMemory.Free(buffer);
            }
        }
        throw new KvmException($"{KvmIoctl.Name(request)} kept growing ({count} MSRs)");
    }

    /// <summary>Creates a VM (<c>KVM_CREATE_VM</c>).</summary>
    public KvmVm CreateVm()
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        int fd = Libc.Ioctl(_fd, KvmIoctl.CreateVm, 0);
        if (fd < 0)
        {
            throw new KvmException(KvmIoctl.CreateVm, Marshal.GetLastPInvokeError(), "type=0");
        }
        return new KvmVm(this, new SafeFileDescriptor(fd));
    }

    /// <summary>Closes <c>/dev/kvm</c>; VMs created from it stay usable.</summary>
    public void Dispose() => _fd.Dispose();
}
