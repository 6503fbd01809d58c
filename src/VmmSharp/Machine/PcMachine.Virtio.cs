using Microsoft.Extensions.Logging;
using VmmSharp.Arch.X86;
using VmmSharp.Buses;
using VmmSharp.Devices;
using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Block;
using VmmSharp.Devices.Virtio.Console;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Net;
using VmmSharp.Devices.Virtio.Rng;
using VmmSharp.Devices.Virtio.Vsock;
using VmmSharp.Events;
using VmmSharp.Kvm;

namespace VmmSharp.Machine;

/// <content>
/// The virtio-mmio devices: models from the options, a window and GSI each from <see cref="Layout"/>, notifications
/// through ioeventfd into the event loop, interrupts through irqfd; where the host lacks those, MMIO exits and
/// KVM_IRQ_LINE instead.
/// </content>
public sealed partial class PcMachine
{
    private readonly List<VirtioMmioTransport> _virtio = [];
    private readonly List<IDisposable> _virtioLines = [];
    private List<VirtioDevice> _virtioModels = [];
    private EventLoop? _events;

    /// <summary>The MMIO bus the virtio-mmio windows sit on (MMIO exits no in-kernel device takes go here).</summary>
    public MmioBus MmioBus { get; } = new();

    /// <summary>The virtio-mmio devices, in slot order (the guest's virtio0, virtio1, …).</summary>
    public IReadOnlyList<VirtioMmioTransport> VirtioDevices => _virtio;

    /// <summary>The virtio-console device when <see cref="MachineOptions.ConsoleDevice"/> is <see cref="ConsoleDevice.Virtio"/>.</summary>
    public VirtioConsole? VirtioConsole { get; private set; }

    /// <summary>
    /// Whether virtio notifications and interrupts bypass the vCPU threads (ioeventfd and irqfd); false when the host
    /// lacks them and they go through MMIO exits and KVM_IRQ_LINE.
    /// </summary>
    public bool VirtioUsesEventFds { get; private set; }

    private static List<VirtioDevice> CreateVirtioModels(MachineOptions options, ConsoleOutput consoleOutput, ILogger logger)
    {
        var models = new List<VirtioDevice>();
        try
        {
            if (options.ConsoleDevice == ConsoleDevice.Virtio)
            {
                models.Add(new VirtioConsole(consoleOutput, logger));
            }
            for (int i = 0; i < options.Disks.Count; i++)
            {
                DiskOptions disk = options.Disks[i];
                try
                {
                    models.Add(new VirtioBlock(disk.Path, disk.ReadOnly, disk.Serial, logger));
                }
                catch (IOException e)
                {
                    throw new MachineConfigurationException(nameof(MachineOptions.Disks), e.Message, e);
                }
                catch (ArgumentException e)
                {
                    throw MachineConfigurationException.FromArgument(nameof(MachineOptions.Disks), e);
                }
            }
            for (int i = 0; i < options.Networks.Count; i++)
            {
                NetOptions net = options.Networks[i];
                byte[] mac = net.Mac ?? [0x52, 0x54, 0x00, 0x12, 0x34, (byte)(0x56 + i)];
                try
                {
                    models.Add(new VirtioNet(net.Tap, mac, logger));
                }
                catch (IOException e)
                {
                    throw new MachineConfigurationException(nameof(MachineOptions.Networks), e.Message, e);
                }
                catch (ArgumentException e)
                {
                    throw MachineConfigurationException.FromArgument(nameof(MachineOptions.Networks), e);
                }
            }
            if (options.Vsock is { } vsock)
            {
                try
                {
                    models.Add(new VirtioVsock(vsock.GuestCid, vsock.SocketPath, logger));
                }
                catch (IOException e)
                {
                    throw new MachineConfigurationException(nameof(MachineOptions.Vsock), e.Message, e);
                }
                catch (ArgumentException e)
                {
                    throw MachineConfigurationException.FromArgument(nameof(MachineOptions.Vsock), e);
                }
            }
            if (options.Rng)
            {
                models.Add(new VirtioRng(logger));
            }
            if (models.Count > Layout.VirtioMmioMaxDevices)
            {
                throw new MachineConfigurationException(nameof(MachineOptions.Disks),
                    $"{models.Count} virtio devices asked for; the layout has room for {Layout.VirtioMmioMaxDevices}");
            }
            return models;
        }
        catch
        {
            foreach (VirtioDevice d in models)
            {
                d.Dispose();
            }
            throw;
        }
    }

    private static MmioDeviceSlot[] VirtioSlots(int count)
    {
        var slots = new MmioDeviceSlot[count];
        for (int i = 0; i < count; i++)
        {
            slots[i] = Layout.VirtioMmioSlot(i);
        }
        return slots;
    }

    private static string WithVirtioCommandLine(string commandLine, MmioDeviceSlot[] slots)
    {
        if (slots.Length == 0)
        {
            return commandLine;
        }
        var parts = new List<string>();
        if (commandLine.Length > 0)
        {
            parts.Add(commandLine);
        }
        foreach (MmioDeviceSlot s in slots)
        {
            parts.Add(s.VirtioCommandLine);
        }
        return string.Join(' ', parts);
    }

    private void AttachVirtio(List<VirtioDevice> models, MmioDeviceSlot[] slots)
    {
        _virtioModels = [.. models];
        if (models.Count == 0)
        {
            return;
        }
        KvmVm vm = _vm.Handle;
        _events = new EventLoop("vmm-virtio", _logger);
        VirtioUsesEventFds = vm.HasEventFds;
        for (int i = 0; i < models.Count; i++)
        {
            MmioDeviceSlot slot = slots[i];
            IIrqLine irq;
            if (VirtioUsesEventFds)
            {
                var line = new IrqFdLine(vm, slot.Gsi);
                _virtioLines.Add(line);
                irq = line;
            }
            else
            {
                irq = IrqchipLine.For(vm, slot.Gsi);
            }
            var transport = new VirtioMmioTransport(models[i], _vm.Memory, slot.Address, irq);
            _virtio.Add(transport);
            MmioBus.Register(slot.Address, slot.Size, transport);
            if (VirtioUsesEventFds)
            {
                // Any value written to QueueNotify: the device looks at each of its queues.
                vm.AddIoEventFd(transport.NotifyEvent, transport.NotifyAddress, 4);
            }
            _events.Add(transport.NotifyEvent, transport.OnNotifyEvent);
            if (models[i] is VirtioNet net)
            {
                _events.AddReadable(net.Backend, net.OnBackendReadable);
            }
            if (models[i] is VirtioVsock vsock)
            {
                _events.AddReadable(vsock.Backend, vsock.OnBackendReadable);
            }
            if (models[i] is VirtioConsole console)
            {
                VirtioConsole = console;
            }
        }
        if (VirtioUsesEventFds)
        {
            LogVirtioEventFds(_logger, models.Count);
        }
        else
        {
            LogVirtioFallback(_logger, models.Count);
        }
    }

    private void DisposeVirtio()
    {
        _events?.Dispose();
        foreach (VirtioDevice d in _virtioModels)
        {
            d.Dispose();
        }
        foreach (VirtioMmioTransport t in _virtio)
        {
            t.Dispose();
        }
        foreach (IDisposable line in _virtioLines)
        {
            line.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} virtio-mmio device(s): notifications through ioeventfd, interrupts through irqfd, work on the event loop")]
    private static partial void LogVirtioEventFds(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} virtio-mmio device(s): this host's KVM lacks ioeventfd/irqfd, so notifications come through MMIO exits and interrupts through KVM_IRQ_LINE")]
    private static partial void LogVirtioFallback(ILogger logger, int count);
}
