using VmmSharp.Arch.X86;
using VmmSharp.Dispatch;
using VmmSharp.Kvm;
using VmmSharp.Memory;

namespace VmmSharp.Vm;

/// <summary>
/// A VM with its guest memory and its vCPUs, each run by a <see cref="VcpuDispatcher"/>.
/// It owns the KVM handles and the memory it was given, and releases them on dispose.
/// </summary>
public sealed class VirtualMachine : IDisposable
{
    private readonly List<VcpuDispatcher> _vcpus = [];
    private readonly KvmCpuidEntry[] _supportedCpuid;
    private int _cpuCount = 1;
    private bool _disposed;

    private VirtualMachine(KvmSystem kvm, KvmVm vm, GuestMemory memory)
    {
        Kvm = kvm;
        Handle = vm;
        Memory = memory;
        _supportedCpuid = kvm.GetSupportedCpuid();
    }

    /// <summary>The KVM system.</summary>
    public KvmSystem Kvm { get; }

    /// <summary>The KVM VM.</summary>
    public KvmVm Handle { get; }

    /// <summary>The guest's memory.</summary>
    public GuestMemory Memory { get; }

    /// <summary>The vCPUs' dispatchers, by vCPU id.</summary>
    public IReadOnlyList<VcpuDispatcher> Vcpus => _vcpus;

    /// <summary>CPUID bits hidden from every vCPU created after this is set.</summary>
    public IReadOnlyList<CpuidMask> CpuidMasks { get; set; } = [];

    /// <summary>
    /// How many vCPUs the VM has: every vCPU's CPUID describes this many, so it is set before the first
    /// <see cref="AddVcpu"/> and <see cref="AddVcpu"/> creates no more. 1 unless set.
    /// </summary>
    /// <exception cref="InvalidOperationException">Set after a vCPU was added.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Set to less than 1 or more than 255.</exception>
    public int CpuCount
    {
        get => _cpuCount;
        set
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 255);
            if (_vcpus.Count > 0)
            {
                throw new InvalidOperationException($"the CPU count is fixed once vCPUs exist ({_vcpus.Count} created for {_cpuCount})");
            }
            _cpuCount = value;
        }
    }

    /// <summary>
    /// Creates a VM over <paramref name="memory"/> (which it then owns), optionally with the in-kernel
    /// irqchip and PIT.
    /// </summary>
    /// <exception cref="KvmUnavailableException">KVM cannot be used here; the message says why.</exception>
    public static VirtualMachine Create(GuestMemory memory, bool irqchip = false) => Create(memory, irqchip, KvmSystem.Open());

    /// <summary>
    /// Creates a VM over <paramref name="memory"/> with an already open <paramref name="kvm"/>; the VM then owns both.
    /// </summary>
    public static VirtualMachine Create(GuestMemory memory, bool irqchip, KvmSystem kvm)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(kvm);
        KvmVm? vm = null;
        try
        {
            vm = kvm.CreateVm();
            // Intel hosts need these pages below 4 GiB; elsewhere the calls are harmless.
            if (vm.CheckExtension(KvmCapability.SetTssAddr) > 0)
            {
                vm.SetTssAddress(0xfffb_d000);
            }
            // Memory before the irqchip: the other way round, KVM spends about 7 ms on the first memory slot.
            vm.MapMemory(memory);
            if (irqchip)
            {
                vm.CreateIrqchip();
                vm.CreatePit();
            }
            return new VirtualMachine(kvm, vm, memory);
        }
        catch
        {
            vm?.Dispose();
            kvm.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates the next vCPU, with CPUID from KVM's supported leaves describing <see cref="CpuCount"/> CPUs, and
    /// returns its dispatcher.
    /// </summary>
    /// <exception cref="InvalidOperationException"><see cref="CpuCount"/> vCPUs exist already.</exception>
    public VcpuDispatcher AddVcpu()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_vcpus.Count >= _cpuCount)
        {
            throw new InvalidOperationException($"the VM has {_cpuCount} CPU(s) and all exist: set CpuCount before adding the first vCPU");
        }
        KvmVcpu vcpu = Handle.CreateVcpu(_vcpus.Count);
        try
        {
            vcpu.SetCpuid(Cpuid.ForVcpu(_supportedCpuid, vcpu.Id, _cpuCount, CpuidMasks));
        }
        catch
        {
            vcpu.Dispose();
            throw;
        }
        var dispatcher = new VcpuDispatcher(vcpu, Memory);
        _vcpus.Add(dispatcher);
        return dispatcher;
    }

    /// <summary>How many times each event was delivered, summed over the vCPUs; events never delivered are left out.</summary>
    public IReadOnlyDictionary<VcpuEvent, long> ExitCounts()
    {
        var counts = new Dictionary<VcpuEvent, long>();
        foreach (VcpuEvent ev in Enum.GetValues<VcpuEvent>())
        {
            long n = _vcpus.Sum(v => v.ExitCount(ev));
            if (n != 0)
            {
                counts[ev] = n;
            }
        }
        return counts;
    }

    /// <summary>The dispatcher of vCPU <paramref name="id"/>.</summary>
    public VcpuDispatcher this[VcpuId id] => _vcpus[id.Value];

    /// <summary>Recalls vCPU <paramref name="id"/> (see <see cref="VcpuDispatcher.Recall"/>).</summary>
    public void Recall(VcpuId id) => this[id].Recall();

    /// <summary>Releases blocked vCPU <paramref name="id"/> (see <see cref="VcpuDispatcher.Release"/>).</summary>
    public void Release(VcpuId id) => this[id].Release();

    /// <summary>
    /// Starts every vCPU on a thread of its own and waits until one ends its run, or
    /// <paramref name="deadline"/> passes. Then stops the others and returns the result that ended the VM;
    /// past the deadline, a failure that says where each vCPU was.
    /// </summary>
    public VcpuRunResult Run(TimeSpan deadline, int stackSize = VcpuDispatcher.DefaultStackSize)
        => Run(deadline, stackSize, out _);

    /// <summary>Like <see cref="Run(TimeSpan, int)"/>; <paramref name="deadlinePassed"/> tells whether the deadline ended it.</summary>
    public VcpuRunResult Run(TimeSpan deadline, int stackSize, out bool deadlinePassed)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_vcpus.Count == 0)
        {
            throw new InvalidOperationException("the VM has no vCPUs: call AddVcpu first");
        }
        Task<VcpuRunResult>[] runs = [.. _vcpus.Select(v => v.Start(stackSize))];
        int first = Task.WaitAny(runs, deadline);
        deadlinePassed = first < 0;
        VcpuRunResult result;
        if (deadlinePassed)
        {
            StopAll();
            // The vCPUs are out of KVM_RUN now, so their state holds still: say where each one was.
            string where = string.Join("; ", _vcpus.Select(v => v.Completion.IsCompleted
                ? $"vCPU {v.Id.Value} at {FaultReport.Describe(v.Vcpu, Memory)}"
                : $"vCPU {v.Id.Value} did not stop"));
            result = new VcpuRunResult(VcpuRunOutcome.Failed, -1,
                $"the guest did not finish within its deadline of {deadline.TotalSeconds:0.###} s ({where})");
        }
        else
        {
            result = runs[first].Result;
            StopAll();
        }
        return result;
    }

    /// <summary>
    /// For a process about to exit: lets a helper process (<c>cat</c>, holding the VM's file descriptor until this
    /// process has exited) perform the kernel's teardown of the VM, so that the exit does not wait for it. Closing a
    /// VM waits for SRCU grace periods as KVM unregisters the PIT, the irqchip and the MMU notifier: 15–35 ms on the
    /// PVM hosts of this project, most of a short-lived VM's life. The guest's memory is still freed when this
    /// process exits; the helper frees the rest right after. Dispose as usual afterwards (it is then cheap).
    /// </summary>
    /// <returns>True if the helper holds the VM; false, with nothing changed, if none could be started.</returns>
    public bool HandOffTeardown()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Handle.HandOffTeardown();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        StopAll();
        bool allStopped = true;
        foreach (VcpuDispatcher v in _vcpus)
        {
            // Never unmap kvm_run under a thread that is still in it.
            if (!v.IsStarted || v.Completion.IsCompleted)
            {
                v.Vcpu.Dispose();
            }
            else
            {
                allStopped = false;
            }
        }
        if (allStopped)
        {
            Handle.Dispose();
            Memory.Dispose();
        }
        Kvm.Dispose();
    }

    private void StopAll()
    {
        foreach (VcpuDispatcher v in _vcpus)
        {
            v.RequestStop();
        }
        // A started vCPU leaves KVM_RUN at once when kicked; bound the wait all the same.
        Task.WaitAll([.. _vcpus.Where(v => v.IsStarted).Select(v => v.Completion)], TimeSpan.FromSeconds(10));
    }
}
